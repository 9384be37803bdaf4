// report.html's item browser: the JSON blob in #data rendered a page at a time (no library, no network).
// State lives in the URL hash (#filter=disagrees,flips&judge=NAME&category=C&q=TEXT&per=50&page=1&open=ID&view=browser),
// so a link or a headless browser opens the page already filtered.
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("data").textContent);
  var FLAGS = D.flags, JUDGES = D.judges, ITEMS = D.items;
  var ID = 0, CAT = 1, GOLD = 2, QUESTION = 3, ANSWERS = 4, VERDICTS = 5, FLAGBITS = 6;
  var state = {filters: [], judge: "", category: "", q: "", per: 50, page: 0};
  var opened = {}, haystack = null;
  function $(id) { return document.getElementById(id); }
  function esc(s) {
    return String(s == null ? "" : s).replace(/[&<>"']/g, function (c) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c];
    });
  }
  function option(select, value, text) {
    var o = document.createElement("option");
    o.value = value; o.textContent = text; select.appendChild(o);
  }
  JUDGES.forEach(function (name) { option($("f-judge"), name, name); });
  D.categories.forEach(function (name) { option($("f-cat"), name, name); });
  if (D.mode !== "pairwise") { $("f-flips").disabled = true; }

  var head = "<tr><th rowspan=2>id</th><th rowspan=2>category</th><th rowspan=2>gold</th>";
  JUDGES.forEach(function (name) { head += '<th colspan=2 class="judge-head">' + esc(name) + "</th>"; });
  head += "<th rowspan=2>question</th></tr><tr>";
  JUDGES.forEach(function () { head += "<th>ab</th><th>ba</th>"; });
  $("items-head").innerHTML = head + "</tr>";
  var columns = 4 + 2 * JUDGES.length;

  function readHash() {
    var p = new URLSearchParams(location.hash.slice(1));
    state.filters = (p.get("filter") || "").split(",").filter(function (f) { return f in FLAGS; });
    state.judge = JUDGES.indexOf(p.get("judge")) >= 0 ? p.get("judge") : "";
    state.category = p.get("category") || "";
    state.q = p.get("q") || "";
    state.per = p.get("per") === "all" ? Infinity : (parseInt(p.get("per"), 10) || 50);
    state.page = Math.max(0, (parseInt(p.get("page"), 10) || 1) - 1);
    if (p.get("open")) {  // an item's texts and replies shown, by id
      ITEMS.forEach(function (it, k) { if (it[ID] === p.get("open")) opened[k] = true; });
    }
    ["disagrees", "flips", "unparsed"].forEach(function (f) { $("f-" + f).checked = state.filters.indexOf(f) >= 0; });
    $("f-judge").value = state.judge; $("f-cat").value = state.category; $("f-q").value = state.q;
    var per = state.per === Infinity ? "all" : String(state.per);
    if (!$("per").querySelector('option[value="' + per + '"]')) option($("per"), per, per);  // e.g. per=10 from a link
    $("per").value = per;
  }
  function writeHash() {
    var p = new URLSearchParams();
    if (state.filters.length) p.set("filter", state.filters.join(","));
    if (state.judge) p.set("judge", state.judge);
    if (state.category) p.set("category", state.category);
    if (state.q) p.set("q", state.q);
    if (state.per !== 50) p.set("per", state.per === Infinity ? "all" : state.per);
    if (state.page) p.set("page", state.page + 1);
    history.replaceState(null, "", "#" + p.toString());
  }

  function selected() {
    var mask = 0;
    state.filters.forEach(function (f) { mask |= FLAGS[f]; });
    var judges = state.judge ? [JUDGES.indexOf(state.judge)] : JUDGES.map(function (_, j) { return j; });
    var q = state.q.trim().toLowerCase();
    if (q && !haystack) {  // built on the first search only: opening the page stays quick
      haystack = ITEMS.map(function (it) {
        var parts = [it[ID], it[QUESTION][0]];
        it[ANSWERS].forEach(function (a) { parts.push(a[0]); });
        it[VERDICTS].forEach(function (pair) { pair.forEach(function (c) { if (c) parts.push(c[3]); }); });
        return parts.join("\n").toLowerCase();
      });
    }
    var out = [];
    for (var k = 0; k < ITEMS.length; k++) {
      var it = ITEMS[k];
      if (state.category && it[CAT] !== state.category) continue;
      if (state.judge && !mask) {  // a judge alone: the items it judged
        var pair = it[VERDICTS][judges[0]];
        if (!pair[0] && !pair[1]) continue;
      }
      if (mask && !judges.some(function (j) { return (it[FLAGBITS][j] & mask) === mask; })) continue;
      if (q && haystack[k].indexOf(q) < 0) continue;
      out.push(k);
    }
    return out;
  }

  function verdictCell(c, gold) {
    if (!c) return '<td class="v none" title="not judged in this order">·</td>';
    var label = c[0] == null ? "unparsed" : c[0];
    var cls = !c[2] ? "unparsed" : gold == null ? "" : String(c[0]) === String(gold) ? "agree" : "differ";
    return '<td class="v ' + cls + '"' + (c[1] ? ' title="scores ' + esc(c[1]) + '"' : "") + ">" + esc(label) + "</td>";
  }
  function text(t, what) {
    var cut = t[0].length < t[1] ? '<span class="cut">(' + what + ": first " + t[0].length + " of " + t[1] +
      " characters)</span>" : "";
    return '<pre class="text">' + esc(t[0]) + "</pre>" + cut;
  }
  function detail(it) {
    var html = '<div class="detail-box"><h4>Question</h4>' + text(it[QUESTION], "question");
    if (it[ANSWERS].length) {
      html += '<div class="answers">';
      it[ANSWERS].forEach(function (a, n) {
        html += "<div><h4>" + (it[ANSWERS].length > 1 ? "Answer " + (n + 1) : "Answer") + "</h4>" + text(a, "answer") + "</div>";
      });
      html += "</div>";
    } else {
      html += '<p class="note">No answers in the gold file: pass --items to see them.</p>';
    }
    JUDGES.forEach(function (name, j) {
      html += '<h4 class="judge-reply">' + esc(name) + "</h4><div class=\"answers\">";
      ["ab", "ba"].forEach(function (order, o) {
        var c = it[VERDICTS][j][o];
        if (!c) return;
        html += "<div><p><b>" + order + "</b>: " + esc(c[0] == null ? "unparsed" : c[0]) +
          (c[1] ? " (scores " + esc(c[1]) + ")" : "") + (c[2] ? "" : ' <span class="bad">parse failure</span>') +
          "</p>" + text([c[3], c[4]], "reply") + "</div>";
      });
      html += "</div>";
    });
    return html + "</div>";
  }

  function render() {
    var sel = selected();
    var pages = state.per === Infinity ? 1 : Math.max(1, Math.ceil(sel.length / state.per));
    state.page = Math.min(state.page, pages - 1);
    var start = state.per === Infinity ? 0 : state.page * state.per;
    var shown = state.per === Infinity ? sel : sel.slice(start, start + state.per);
    var html = [];
    shown.forEach(function (k) {
      var it = ITEMS[k];
      var row = '<tr class="item" data-k="' + k + '" data-id="' + esc(it[ID]) + '"><td>' + esc(it[ID]) + "</td><td>" +
        esc(it[CAT]) + "</td><td>" + esc(it[GOLD] == null ? "-" : it[GOLD]) + "</td>";
      it[VERDICTS].forEach(function (pair) { row += verdictCell(pair[0], it[GOLD]) + verdictCell(pair[1], it[GOLD]); });
      row += '<td class="q">' + esc(it[QUESTION][0].slice(0, 160)) + "</td></tr>";
      html.push(row);
      if (opened[k]) html.push('<tr class="detail"><td colspan="' + columns + '">' + detail(it) + "</td></tr>");
    });
    $("rows").innerHTML = html.join("");
    $("count").textContent = sel.length;
    $("total").textContent = ITEMS.length;
    $("page").textContent = "page " + (state.page + 1) + " of " + pages;
    $("prev").disabled = state.page === 0;
    $("next").disabled = state.page >= pages - 1;
  }
  function update() { writeHash(); render(); }

  ["disagrees", "flips", "unparsed"].forEach(function (f) {
    $("f-" + f).addEventListener("change", function () {
      state.filters = ["disagrees", "flips", "unparsed"].filter(function (g) { return $("f-" + g).checked; });
      state.page = 0; update();
    });
  });
  $("f-judge").addEventListener("change", function () { state.judge = this.value; state.page = 0; update(); });
  $("f-cat").addEventListener("change", function () { state.category = this.value; state.page = 0; update(); });
  $("f-q").addEventListener("input", function () { state.q = this.value; state.page = 0; update(); });
  $("per").addEventListener("change", function () {
    state.per = this.value === "all" ? Infinity : parseInt(this.value, 10); state.page = 0; update();
  });
  $("prev").addEventListener("click", function () { state.page -= 1; update(); });
  $("next").addEventListener("click", function () { state.page += 1; update(); });
  $("rows").addEventListener("click", function (e) {
    var tr = e.target.closest("tr.item");
    if (!tr) return;
    var k = tr.getAttribute("data-k");
    if (opened[k]) delete opened[k]; else opened[k] = true;
    render();
  });
  window.addEventListener("hashchange", function () { readHash(); render(); });
  readHash();
  render();
  var view = new URLSearchParams(location.hash.slice(1)).get("view");  // e.g. view=browser: open at the items
  if (view && $(view)) $(view).scrollIntoView();
  document.body.setAttribute("data-rendered-ms", String(Math.round(performance.now())));
})();
