// qixin console: charts on the dashboard (Apache ECharts, served locally), the CSRF header for htmx and the
// names shown by the file inputs.
(function () {
  "use strict";
  function csrf() {
    var m = document.querySelector('meta[name="csrf-token"]');
    return m ? m.getAttribute("content") : "";
  }
  // htmx requests that change something carry the session's CSRF token as a header
  document.addEventListener("htmx:config:request", function (e) {
    var d = e.detail || {};
    var headers = d.headers || (d.ctx && d.ctx.request && d.ctx.request.headers);
    if (headers) { headers["X-CSRF-Token"] = csrf(); }
  });

  function charts() {
    var data = document.getElementById("chart-data");
    if (!data || typeof echarts === "undefined") { return; }
    var d = JSON.parse(data.textContent);
    var days = document.getElementById("chart-days");
    if (days) {
      var c1 = echarts.init(days);
      c1.setOption({
        animation: false,
        tooltip: { trigger: "axis" },
        legend: { top: 0, data: ["发送", "送达"] },
        grid: { left: 40, right: 16, top: 36, bottom: 28 },
        xAxis: { type: "category", data: d.days.map(function (x) { return x.slice(5); }) },
        yAxis: { type: "value", minInterval: 1 },
        series: [
          { name: "发送", type: "bar", data: d.sent, itemStyle: { color: "#1664ff" } },
          { name: "送达", type: "line", data: d.delivered, itemStyle: { color: "#2ea121" } }
        ]
      });
      days.setAttribute("data-ready", "1");
    }
    var car = document.getElementById("chart-carriers");
    if (car) {
      var c2 = echarts.init(car);
      c2.setOption({
        animation: false,
        tooltip: { trigger: "item" },
        legend: { bottom: 0 },
        series: [{ type: "pie", radius: ["40%", "70%"], data: d.carriers.length ? d.carriers : [{ name: "暂无", value: 0 }] }]
      });
      car.setAttribute("data-ready", "1");
    }
  }
  window.addEventListener("load", charts);

  // file inputs (templates/macros.html): the chosen file's name next to the 选择文件 button
  document.documentElement.classList.add("js");
  function showFiles(input) {
    var pick = input.closest(".file-pick");
    var label = pick && pick.querySelector(".file-name");
    if (!label) { return; }
    var names = Array.prototype.map.call(input.files || [], function (f) { return f.name; });
    label.textContent = names.length ? names.join("、") : "未选择文件";
  }
  document.addEventListener("change", function (e) {
    var t = e.target;
    if (t && t.matches && t.matches('.file-pick input[type="file"]')) { showFiles(t); }
  });
  // a page restored from the back/forward cache keeps the files it had
  window.addEventListener("pageshow", function () {
    Array.prototype.forEach.call(document.querySelectorAll('.file-pick input[type="file"]'), showFiles);
  });
})();
