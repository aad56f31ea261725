// The index page: the label filter keeps the videos that have events of that label.
(() => {
  "use strict";
  const select = document.getElementById("label-filter");
  select.addEventListener("change", () => {
    for (const row of document.querySelectorAll("tr.video")) {
      row.hidden = select.value !== "" && !row.dataset.labels.split("\n").includes(select.value);
    }
  });
})();
