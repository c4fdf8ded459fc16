/* recxbench leaderboard: sortable tables (no dependencies; the page is fully readable without it).
 * Click a column header to sort by it; click again to reverse. Numeric columns sort by the raw
 * number in each cell's data-sort attribute; "n/a" cells (data-na) always sort last.
 * Deep links: #sort=<table-id>:<column-index>[:asc|:desc] opens the page with that table sorted
 * (column indices start at 0); clicking a header updates the address to such a link. */
(function () {
  "use strict";

  function keyOf(row, index, numeric) {
    var cell = row.cells[index];
    if (!cell || cell.hasAttribute("data-na")) { return null; }
    var raw = cell.getAttribute("data-sort");
    if (raw === null) { raw = cell.textContent; }
    if (numeric) {
      var x = parseFloat(raw);
      return isNaN(x) ? null : x;
    }
    return raw.trim().toLowerCase();
  }

  function sortTable(table, index, direction) {
    var head = table.tHead.rows[0].cells;
    var numeric = head[index].getAttribute("data-type") === "num";
    var sign = direction === "descending" ? -1 : 1;
    var body = table.tBodies[0];
    var items = Array.prototype.map.call(body.rows, function (row, i) {
      return { row: row, key: keyOf(row, index, numeric), i: i };
    });
    items.sort(function (a, b) {
      if (a.key === null || b.key === null) {
        if (a.key === b.key) { return a.i - b.i; }
        return a.key === null ? 1 : -1;
      }
      if (a.key < b.key) { return -sign; }
      if (a.key > b.key) { return sign; }
      return a.i - b.i;
    });
    items.forEach(function (item) { body.appendChild(item.row); });
    for (var j = 0; j < head.length; j += 1) {
      head[j].setAttribute("aria-sort", j === index ? direction : "none");
    }
  }

  function nextDirection(th) {
    var current = th.getAttribute("aria-sort");
    if (current === "ascending") { return "descending"; }
    if (current === "descending") { return "ascending"; }
    return th.getAttribute("data-first") === "desc" ? "descending" : "ascending";
  }

  function applyFragment() {
    var match = /^#sort=([A-Za-z0-9_-]+):(\d+)(?::(asc|desc))?$/.exec(window.location.hash);
    if (!match) { return; }
    var table = document.getElementById(match[1]);
    if (!table || !table.classList.contains("sortable") || !table.tHead) { return; }
    var index = parseInt(match[2], 10);
    if (index >= table.tHead.rows[0].cells.length) { return; }
    sortTable(table, index, match[3] === "desc" ? "descending" : "ascending");
  }

  function init() {
    var tables = document.querySelectorAll("table.sortable");
    Array.prototype.forEach.call(tables, function (table) {
      if (!table.tHead || !table.tBodies.length) { return; }
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, index) {
        var button = document.createElement("button");
        button.type = "button";
        button.className = "sort";
        while (th.firstChild) { button.appendChild(th.firstChild); }
        th.appendChild(button);
        button.addEventListener("click", function () {
          var direction = nextDirection(th);
          sortTable(table, index, direction);
          var link = "#sort=" + table.id + ":" + index + ":" + (direction === "descending" ? "desc" : "asc");
          try { window.history.replaceState(null, "", link); } catch (e) { /* file:// in some browsers */ }
        });
      });
    });
    document.documentElement.classList.add("js");
    applyFragment();
  }

  window.addEventListener("hashchange", applyFragment);
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
}());
