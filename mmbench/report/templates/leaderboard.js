document.querySelectorAll("table.sortable").forEach(function (table) {
  var heads = table.querySelectorAll("thead th");
  heads.forEach(function (th, col) {
    th.addEventListener("click", function () {
      var numeric = th.dataset.type === "num";
      var current = th.getAttribute("aria-sort");
      var next = current ? (current === "ascending" ? "descending" : "ascending")
                         : (numeric ? "descending" : "ascending");
      heads.forEach(function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", next);
      var dir = next === "ascending" ? 1 : -1;
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[col].dataset.v || "", y = b.cells[col].dataset.v || "";
        if (x === "" || y === "") { return (x === "") - (y === ""); }
        return dir * (numeric ? parseFloat(x) - parseFloat(y) : x.localeCompare(y));
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
