// One video's report: draws the timeline from the JSON blob, zooms and scrolls it, filters labels,
// and seeks the player from the timeline, the filmstrip and the event rows.
(() => {
  "use strict";
  const D = JSON.parse(document.getElementById("data").textContent);
  const perLabel = D.thresholds.some((value) => value !== D.threshold);  // a calibrated file gave labels their own
  const $ = (id) => document.getElementById(id);
  const video = $("video");
  const canvas = $("timeline");
  const ctx = canvas.getContext("2d");
  const BAR = 5, SPACE = 5, AXIS = 20, NAMES = 190;  // pixels
  let lane = 20;  // a lane's height in pixels: 20 for the heatmap, 40 for curves
  const STOPS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];  // viridis
  const duration = Math.max(D.duration, 1e-6);
  const shown = D.labels.map(() => true);
  const T = D.timeline;
  const edges = T ? T.edges : [];
  // a label past the timeline's top labels has no row (null): no lane, its events still listed
  const values = T ? T.values.map((row) => (row === null ? null : row.map((v) => (v === null ? NaN : v / T.scale)))) : [];
  const minSpan = Math.min(duration, Math.max(0.5, duration / 5000));
  let t0 = 0, t1 = duration, view = "heatmap";

  const hms = (t) => {
    const tenths = Math.round(t * 10), whole = Math.floor(tenths / 10), tenth = tenths % 10;
    const pad = (n) => String(n).padStart(2, "0");
    const text = `${pad(Math.floor(whole / 3600))}:${pad(Math.floor(whole / 60) % 60)}:${pad(whole % 60)}`;
    return tenth ? `${text}.${tenth}` : text;
  };
  const colour = (f) => {
    const x = Math.min(Math.max(f, 0), 1) * (STOPS.length - 1), k = Math.min(Math.floor(x), STOPS.length - 2);
    const a = STOPS[k], b = STOPS[k + 1], u = x - k;
    return `rgb(${a.map((c, i) => Math.round(c + (b[i] - c) * u)).join(",")})`;
  };
  const rows = () => D.labels.map((_, m) => m).filter((m) => shown[m] && (!T || values[m] !== null));

  // The colour scale and the curves' height run from the lowest to the highest value of the labels
  // shown (whole video), so ten labels' softmax scores near 0.1 still span the whole scale.
  function range() {
    if (!T) return [0, 1];
    let lo = Infinity, hi = -Infinity;
    for (const m of rows()) for (const v of values[m]) if (!Number.isNaN(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    if (!Number.isFinite(lo)) return [0, 1];
    if (hi - lo < 1e-6) { lo -= 0.0005; hi += 0.0005; }
    return [lo, hi];
  }
  const digits = (lo, hi) => (hi - lo < 0.01 ? 4 : 3);

  // Windows in view as whole-pixel columns; windows narrower than a pixel share one column, which
  // shows their maximum (so a short peak still shows) and no seams show between columns.
  function columns(m, x) {
    const out = [];
    let lo = 0, hi = edges.length - 1;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (edges[mid + 1] <= t0) lo = mid + 1; else hi = mid; }
    for (let w = lo; w < edges.length - 1 && edges[w] < t1; w++) {
      const pa = Math.round(x(edges[w])), pb = Math.round(x(edges[w + 1])), v = values[m][w], last = out[out.length - 1];
      if (last && pb <= last.xb) {
        if (!Number.isNaN(v) && !(last.v >= v)) last.v = v;
      } else if (last && pa < last.xb) out.push({ xa: last.xb, xb: pb, v });
      else out.push({ xa: pa, xb: Math.max(pb, pa + 1), v });
    }
    return out;
  }

  function niceStep(seconds) {
    const steps = [0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400];
    return steps.find((s) => s >= seconds) || steps[steps.length - 1];
  }

  function draw() {
    const dpr = window.devicePixelRatio || 1, width = canvas.clientWidth, shownRows = rows();
    const height = AXIS + Math.max(shownRows.length, 1) * (lane + BAR + SPACE) + 2;
    canvas.style.height = `${height}px`;
    canvas.width = Math.round(width * dpr); canvas.height = Math.round(height * dpr);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);
    const plot = Math.max(width - NAMES, 10), x = (t) => NAMES + ((t - t0) / (t1 - t0)) * plot;
    const [lo, hi] = range(), frac = (v) => (v - lo) / (hi - lo);
    ctx.font = "12px system-ui, sans-serif"; ctx.textBaseline = "middle";
    // time axis
    const step = niceStep((t1 - t0) / (plot / 110));
    ctx.fillStyle = "#57606a"; ctx.strokeStyle = "#d0d7de"; ctx.textAlign = "center";
    for (let t = Math.ceil(t0 / step) * step; t <= t1 + 1e-9; t += step) {
      ctx.beginPath(); ctx.moveTo(x(t) + 0.5, AXIS - 4); ctx.lineTo(x(t) + 0.5, height); ctx.stroke();
      ctx.fillText(hms(t), Math.min(Math.max(x(t), NAMES + 30), width - 30), AXIS / 2 - 2);
    }
    shownRows.forEach((m, r) => {
      const y = AXIS + r * (lane + BAR + SPACE);
      ctx.fillStyle = "#1b1f24"; ctx.textAlign = "right";
      let name = D.labels[m];
      while (name.length > 3 && ctx.measureText(name).width > NAMES - 10) name = name.slice(0, -2) + "…";
      ctx.fillText(name, NAMES - 8, y + lane / 2);
      ctx.save(); ctx.beginPath(); ctx.rect(NAMES, 0, plot, height); ctx.clip();
      if (T) {
        const cols = columns(m, x);
        if (view === "heatmap") {
          for (const c of cols) {
            ctx.fillStyle = Number.isNaN(c.v) ? "#eaeef2" : colour(frac(c.v));
            ctx.fillRect(c.xa, y, c.xb - c.xa, lane);
          }
        } else {
          ctx.fillStyle = "#f6f8fa"; ctx.fillRect(NAMES, y, plot, lane);
          ctx.beginPath(); ctx.strokeStyle = "#0969da"; ctx.lineWidth = 1.5;
          let open = false;
          for (const c of cols) {
            if (Number.isNaN(c.v)) { open = false; continue; }
            const cy = y + lane - frac(c.v) * lane;
            if (open) ctx.lineTo(c.xa, cy); else ctx.moveTo(c.xa, cy);
            ctx.lineTo(Math.max(c.xb, c.xa + 1), cy); open = true;
          }
          ctx.stroke(); ctx.lineWidth = 1;
          const th = D.thresholds[m];
          if (th !== null && th >= lo && th <= hi) {
            const ty = Math.round(y + lane - frac(th) * lane) + 0.5;
            ctx.setLineDash([4, 3]); ctx.strokeStyle = "#cf222e";
            ctx.beginPath(); ctx.moveTo(NAMES, ty); ctx.lineTo(width, ty); ctx.stroke(); ctx.setLineDash([]);
          }
        }
      }
      ctx.fillStyle = "#bc4c00";
      for (const [label, start, end] of D.events) {
        if (label !== m || end < t0 || start > t1) continue;
        ctx.fillRect(x(start), y + lane + 1, Math.max(x(end) - x(start), 2), BAR);
      }
      ctx.restore();
    });
    ctx.save(); ctx.beginPath(); ctx.rect(NAMES, AXIS, plot, height - AXIS); ctx.clip();
    ctx.fillStyle = "rgba(110,119,129,0.45)";
    for (const [start, end] of D.gaps) ctx.fillRect(x(start), AXIS, Math.max(x(end) - x(start), 2), height - AXIS);
    ctx.fillStyle = "rgba(208,215,222,0.7)";
    for (const [start, end] of T ? T.frameless : []) ctx.fillRect(x(start), AXIS, Math.max(x(end) - x(start), 1), height - AXIS);
    if (video && video.currentTime >= t0 && video.currentTime <= t1) {
      ctx.strokeStyle = "#cf222e"; ctx.lineWidth = 2;
      ctx.beginPath(); ctx.moveTo(x(video.currentTime), AXIS - 4); ctx.lineTo(x(video.currentTime), height); ctx.stroke();
    }
    ctx.restore();
    $("range").textContent = `${hms(t0)} – ${hms(t1)}`;
    const scroll = $("scroll");
    scroll.hidden = t1 - t0 >= duration - 1e-9;
    scroll.value = String(Math.round((t0 / Math.max(duration - (t1 - t0), 1e-9)) * 1000));
    legend(lo, hi);
  }

  function legend(lo, hi) {
    const box = $("legend"), n = digits(lo, hi);
    if (!T) { box.textContent = "No per-window scores to draw: score the video with segments."; return; }
    const parts = [];
    if (view === "heatmap") {
      parts.push(`<span>${D.measure} ${lo.toFixed(n)} <canvas id="ramp" width="200" height="12"></canvas> ${hi.toFixed(n)}</span>`);
    } else {
      parts.push(`<span>lane height: ${D.measure} ${lo.toFixed(n)} (bottom) to ${hi.toFixed(n)} (top)</span>`);
      if (D.threshold !== null) parts.push(`<span><span class="key" style="border-top:2px dashed #cf222e;height:0"></span>${perLabel ? "each label's threshold" : "threshold " + D.threshold}</span>`);
    }
    const rule = D.threshold === null ? "" : perLabel ? ` (${D.measure} ≥ each label's threshold)` : ` (${D.measure} ≥ ${D.threshold})`;
    parts.push(`<span><span class="key" style="background:#bc4c00"></span>events${rule}</span>`);
    if (D.gaps.length) parts.push(`<span><span class="key" style="background:rgba(110,119,129,0.45)"></span>frames that do not decode</span>`);
    if (T.frameless.length) parts.push(`<span><span class="key" style="background:rgba(208,215,222,0.7)"></span>windows without a keyframe: not scored</span>`);
    if (T.partial) parts.push("<span>pale: not among a window's top labels</span>");
    const lanes = values.filter((row) => row !== null).length;
    if (lanes < D.labels.length) parts.push(`<span>lanes for the clip's top ${lanes} of ${D.labels.length} labels</span>`);
    parts.push("<span>wheel or + −: zoom · drag or ← →: scroll · click: play from there</span>");
    box.innerHTML = parts.join("");
    const ramp = $("ramp");
    if (ramp) {
      const g = ramp.getContext("2d");
      for (let i = 0; i < 200; i++) { g.fillStyle = colour(i / 199); g.fillRect(i, 0, 1, 12); }
      if (D.threshold !== null && D.threshold >= lo && D.threshold <= hi) {
        const tx = Math.round(((D.threshold - lo) / (hi - lo)) * 199);
        g.fillStyle = "#cf222e"; g.fillRect(tx - 1, 0, 3, 12);
      }
    }
  }

  function setView(a, b) {
    let span = Math.min(Math.max(b - a, minSpan), duration);
    a = Math.min(Math.max(a, 0), duration - span);
    t0 = a; t1 = a + span;
    draw(); followStrip();
  }
  function zoom(factor, around) {
    const span = Math.min(Math.max((t1 - t0) * factor, minSpan), duration);
    setView(around - ((around - t0) / (t1 - t0)) * span, around - ((around - t0) / (t1 - t0)) * span + span);
  }
  const timeAt = (px) => t0 + ((px - NAMES) / Math.max(canvas.clientWidth - NAMES, 10)) * (t1 - t0);

  // A moment is also the page's address (#t=SECONDS): a link to it, or a reload, seeks there.
  function seek(t) {
    t = Math.min(Math.max(t, 0), duration);
    if (video) video.currentTime = t;
    history.replaceState(null, "", `#t=${Math.round(t * 1000) / 1000}`);
    if (t < t0 || t > t1) setView(t - (t1 - t0) / 2, t + (t1 - t0) / 2);
    else draw();
    markStrip(t);
  }

  // the filmstrip: its frames, the one on screen marked, scrolled to follow the timeline's view
  const frames = [...document.querySelectorAll("#filmstrip img.frame")];
  function markStrip(t) {
    let best = null, gap = Infinity;
    for (const f of frames) { const d = Math.abs(Number(f.dataset.time) - t); if (d < gap) { gap = d; best = f; } }
    frames.forEach((f) => f.classList.toggle("now", f === best));
    const strip = $("filmstrip"), left = best ? best.offsetLeft - strip.offsetLeft : 0;
    if (best && (left < strip.scrollLeft || left + best.offsetWidth > strip.scrollLeft + strip.clientWidth)) {
      strip.scrollLeft = left - (strip.clientWidth - best.offsetWidth) / 2;
    }
  }
  function followStrip() {
    const first = frames.find((f) => Number(f.dataset.time) >= t0);
    const strip = $("filmstrip");
    if (first) strip.scrollLeft = first.offsetLeft - strip.offsetLeft;
  }

  for (const img of document.querySelectorAll("img[data-thumb]")) img.src = D.thumbs[Number(img.dataset.thumb)];
  for (const f of frames) f.addEventListener("click", () => seek(Number(f.dataset.time)));
  for (const row of document.querySelectorAll("tr.event")) {
    row.addEventListener("click", (e) => { e.preventDefault(); seek(Number(row.querySelector("[data-time]").dataset.time)); });
  }

  // zoom with the wheel, scroll by dragging, a click without a drag seeks
  canvas.addEventListener("wheel", (e) => {
    if (e.offsetX < NAMES) return;
    e.preventDefault();
    zoom(e.deltaY > 0 ? 1.25 : 0.8, timeAt(e.offsetX));
  }, { passive: false });
  let drag = null;
  canvas.addEventListener("pointerdown", (e) => { drag = { x: e.offsetX, t0, moved: false }; canvas.setPointerCapture(e.pointerId); });
  canvas.addEventListener("pointermove", (e) => {
    if (drag) {
      const dx = e.offsetX - drag.x;
      if (Math.abs(dx) > 3) drag.moved = true;
      if (drag.moved) { const dt = (dx / Math.max(canvas.clientWidth - NAMES, 10)) * (t1 - t0); setView(drag.t0 - dt, drag.t0 - dt + (t1 - t0)); }
    }
    hover(e);
  });
  canvas.addEventListener("pointerup", (e) => {
    if (drag && !drag.moved && e.offsetX >= NAMES) seek(timeAt(e.offsetX));
    drag = null;
  });
  canvas.addEventListener("pointerleave", () => { $("hover").textContent = ""; });
  function hover(e) {
    const r = Math.floor((e.offsetY - AXIS) / (lane + BAR + SPACE)), m = rows()[r], t = timeAt(e.offsetX);
    if (e.offsetX < NAMES || m === undefined || t < 0 || t > duration) { $("hover").textContent = ""; return; }
    let text = `${D.labels[m]} at ${hms(t)}`;
    if (T) {
      let w = edges.findIndex((edge) => edge > t) - 1;
      if (w < 0) w = edges.length - 2;
      const v = values[m][w];
      if (!Number.isNaN(v)) text += `: ${D.measure} ${v.toFixed(4)}`;
      else if (T.frameless.some(([a, b]) => t >= a && t < b)) text += ": no keyframe in this window";
    }
    $("hover").textContent = text;
  }
  // the keyboard, with the timeline focused: + and - zoom, the arrows scroll, 0 shows the whole video
  canvas.addEventListener("keydown", (e) => {
    const span = t1 - t0, keys = {
      "+": () => zoom(0.5, (t0 + t1) / 2), "=": () => zoom(0.5, (t0 + t1) / 2), "-": () => zoom(2, (t0 + t1) / 2),
      ArrowLeft: () => setView(t0 - span / 4, t1 - span / 4), ArrowRight: () => setView(t0 + span / 4, t1 + span / 4),
      0: () => setView(0, duration),
    };
    if (keys[e.key]) { e.preventDefault(); keys[e.key](); }
  });
  $("zoom-in").addEventListener("click", () => zoom(0.5, (t0 + t1) / 2));
  $("zoom-out").addEventListener("click", () => zoom(2, (t0 + t1) / 2));
  $("zoom-fit").addEventListener("click", () => setView(0, duration));
  $("scroll").addEventListener("input", (e) => {
    const span = t1 - t0, a = (Number(e.target.value) / 1000) * (duration - span);
    setView(a, a + span);
  });
  $("view").addEventListener("change", (e) => { view = e.target.value; lane = view === "curves" ? 40 : 20; draw(); });

  // the label filter hides the label's lane and its events
  const boxes = [...document.querySelectorAll("#filter input[type=checkbox]")];
  function applyFilter() {
    boxes.forEach((b) => { shown[Number(b.value)] = b.checked; });
    for (const group of document.querySelectorAll(".group")) group.hidden = !shown[Number(group.dataset.label)];
    draw();
  }
  boxes.forEach((b) => b.addEventListener("change", applyFilter));
  $("show-all").addEventListener("click", () => { boxes.forEach((b) => { b.checked = true; }); applyFilter(); });
  $("show-none").addEventListener("click", () => { boxes.forEach((b) => { b.checked = false; }); applyFilter(); });

  if (video) {
    video.addEventListener("timeupdate", () => { draw(); markStrip(video.currentTime); });
    video.addEventListener("error", () => {
      const note = $("video-note");
      note.hidden = false;
      note.textContent = `This browser cannot play ${video.getAttribute("src")} (the file moved, or its codec is not supported here); the timeline and events still work.`;
    });
  }
  window.addEventListener("resize", draw);
  draw();
  const moment = /^#t=([0-9.]+)$/.exec(location.hash);
  if (moment) seek(Number(moment[1]));
})();
