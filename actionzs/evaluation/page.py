"""What `actionzs eval` writes besides metrics.json: the confusion matrix as a PNG (Pillow), and one
self-contained HTML page (styles and the PNG inside) with the headline figures, the prompt
ablation, per-class results and the confusion matrix."""

from __future__ import annotations

import base64
import html
import io

import numpy as np

#: Side of one confusion cell in pixels, by class count: readable for 5 classes, 400 still fit.
_CELL_MAX, _CELL_MIN, _PLOT_MAX = 28, 3, 1400
#: Up to this many classes the page also shows the confusion counts as a table.
_COUNTS_TABLE_CLASSES = 30
_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1b1f24; }
h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 28px 0 8px; }
.meta { color: #57606a; } table { border-collapse: collapse; }
td, th { padding: 3px 10px; text-align: left; border-bottom: 1px solid #d0d7de; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
"""


def confusion_png(confusion: np.ndarray, classes: list[str]) -> bytes:
    """The confusion matrix as a PNG: rows the true class, columns the predicted one, each cell's
    blue its share of the row (white 0, deep blue 1); names drawn when the cells are large enough."""
    from PIL import Image, ImageDraw

    n = len(classes)
    cell = int(np.clip(_PLOT_MAX // max(n, 1), _CELL_MIN, _CELL_MAX))
    named = cell >= 10
    margin = 8 + (min(max(len(c) for c in classes), 28) * 6 if named else 0)
    image = Image.new("RGB", (margin + n * cell + 8, margin + n * cell + 8), "white")
    draw = ImageDraw.Draw(image)
    totals = confusion.sum(axis=1, keepdims=True)
    shares = np.divide(confusion, totals, out=np.zeros(confusion.shape, float), where=totals > 0)
    for t in range(n):
        for p in range(n):
            v = float(shares[t, p])
            colour = tuple(int(round(255 + (c - 255) * v)) for c in (8, 48, 107))
            x, y = margin + p * cell, margin + t * cell
            draw.rectangle([x, y, x + cell - 1, y + cell - 1], fill=colour, outline="#d0d7de" if named else None)
    if named:
        for k, name in enumerate(classes):
            short = name[:28]
            draw.text((4, margin + k * cell + (cell - 10) // 2), short, fill="#1b1f24")
            label = Image.new("RGB", (margin - 8, cell), "white")
            ImageDraw.Draw(label).text((2, (cell - 10) // 2), short, fill="#1b1f24")
            image.paste(label.rotate(90, expand=True), (margin + k * cell, 4))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return '<td class="n">–</td>'
    if isinstance(value, float):
        return f'<td class="n">{100 * value:.1f}</td>'
    return f'<td class="n">{value}</td>' if isinstance(value, int) else f"<td>{html.escape(str(value))}</td>"


def _table(head: list[str], rows: list[list]) -> str:
    top = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{top}</tr>{body}</table>"


def _list(title: str, lines: list[str]) -> str:
    if not lines:
        return ""
    items = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
    return f"<h2>{html.escape(title)} ({len(lines)})</h2><ul>{items}</ul>"


def render_page(metrics: dict, png: bytes | None) -> str:
    """The HTML page of a metrics record (trimmed or temporal); percentages with one decimal."""
    title = f"actionzs eval: {metrics['dataset']}"
    meta = f"model {metrics['model']} &middot; headline variant: {html.escape(metrics['variant'])}"
    parts = [f"<h1>{html.escape(title)}</h1><p class='meta'>{meta}</p>"]
    if metrics["kind"] == "trimmed":
        parts.append(_table(["clips", "top-1 %", "top-5 %", "mean class accuracy %"],
                            [[metrics["clips"], metrics["top1"], metrics["top5"], metrics["mean_class_accuracy"]]]))
        parts.append("<h2>Prompt ablation</h2>" + _table(
            ["variant", "top-1 %", "top-5 %", "mean class accuracy %"],
            [[a["variant"], a["top1"], a["top5"], a["mean_class_accuracy"]] for a in metrics["ablation"]]))
        parts.append("<h2>Per class</h2>" + _table(
            ["class", "clips", "accuracy %"], [[c["class"], c["clips"], c["accuracy"]] for c in metrics["per_class"]]))
        if metrics["most_confused"]:
            parts.append("<h2>Most confused</h2>" + _table(
                ["class", "predicted as", "clips"], [[m["class"], m["predicted"], m["clips"]] for m in metrics["most_confused"]]))
        if png is not None:
            data = base64.b64encode(png).decode("ascii")
            parts.append("<h2>Confusion matrix</h2><p class='meta'>rows: true class; columns: predicted; "
                         f"shade: share of the row</p><img alt='confusion matrix' src='data:image/png;base64,{data}'>")
        if len(metrics["classes"]) <= _COUNTS_TABLE_CLASSES:
            parts.append(_table(["true \\ predicted", *metrics["classes"]],
                                [[c, *row] for c, row in zip(metrics["classes"], metrics["confusion"])]))
    else:
        tious = [f"tIoU {t:g}" for t in metrics["thresholds"]]
        parts.append(_table(["videos", "ground truth", "detections", *[f"mAP % {t}" for t in tious], "average mAP %"],
                            [[metrics["videos"], metrics["ground_truth"], metrics["detections"], *metrics["map"],
                              metrics["average_map"]]]))
        events = metrics["events"]
        parts.append(f"<h2>Events at tIoU {events['tiou']:g}</h2>" + _table(
            ["precision %", "recall %", "F1 %", "true positives"],
            [[events["precision"], events["recall"], events["f1"], events["true_positives"]]]))
        parts.append("<h2>Prompt ablation</h2>" + _table(
            ["variant", *[f"mAP % {t}" for t in tious], "average mAP %"],
            [[a["variant"], *a["map"], a["average_map"]] for a in metrics["ablation"]]))
        parts.append("<h2>AP per class</h2>" + _table(
            ["class", *[f"AP % {t}" for t in tious]], [[c, *aps] for c, aps in metrics["per_class"].items()]))
    parts.append(_list("Failed", [f"{f['video']}: {f['error']}" for f in metrics["failures"]]))
    parts.append(_list("Left out", metrics["problems"]))
    parts.append(_list("Notes", metrics.get("notes", [])))
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body>{''.join(parts)}</body></html>\n")
