/* Upload progress for forms marked data-upload-progress (the bulk import).
 *
 * The form is sent with XMLHttpRequest so that the page can say how much of the file has gone (bytes,
 * percentage, rate, time left: officers in field offices are on slow links), then that the server is
 * checking and importing its rows (with the seconds it has taken so far). The answer replaces the page's
 * <main> (its title too); a file answer (the check-only copy) is saved as a download. Without script the
 * form posts as usual. No innerHTML: the answer is parsed with DOMParser and its nodes imported.
 * Each step is also dispatched as a "stopnet:upload" event (detail: phase, loaded, total).
 */
(function () {
  "use strict";

  function megabytes(n) { return (n / 1048576).toFixed(n < 10485760 ? 1 : 0) + " MB"; }

  function say(form, phase, loaded, total, text) {
    var bar = form.querySelector("progress.upload-progress");
    var line = form.querySelector(".upload-status");
    if (bar) {
      if (total > 0 && phase === "upload") { bar.max = total; bar.value = loaded; } else { bar.removeAttribute("value"); }
      bar.hidden = false;
    }
    if (line) { line.textContent = text; line.hidden = false; }
    form.dispatchEvent(new CustomEvent("stopnet:upload", { bubbles: true, detail: { phase: phase, loaded: loaded, total: total } }));
  }

  function replacePage(html, url) {
    var doc = new DOMParser().parseFromString(html, "text/html");
    var main = doc.querySelector("main");
    var here = document.querySelector("main");
    if (!main || !here) { window.location.assign(url); return; }
    here.replaceWith(document.importNode(main, true));
    if (doc.title) { document.title = doc.title; }
    if (url && url !== window.location.href) { window.history.pushState({}, "", url); }
    wire(document);
  }

  function download(xhr) {
    var disposition = xhr.getResponseHeader("Content-Disposition") || "";
    var match = /filename="([^"]+)"/.exec(disposition);
    var link = document.createElement("a");
    link.href = URL.createObjectURL(xhr.response);
    link.download = match ? match[1] : "download";
    document.body.appendChild(link);
    link.click();
    link.remove();
  }

  function send(form, submitter) {
    var data = new FormData(form);
    var action = (submitter && submitter.getAttribute("formaction")) || form.action;
    var file = form.querySelector("input[type=file]");
    var size = file && file.files && file.files[0] ? file.files[0].size : 0;
    var started = Date.now();
    var ticking = null;
    var xhr = new XMLHttpRequest();
    xhr.open("POST", action);
    xhr.responseType = "blob";
    xhr.upload.addEventListener("progress", function (ev) {
      var total = ev.lengthComputable ? ev.total : size;
      var seconds = (Date.now() - started) / 1000;
      var rate = seconds > 0 ? ev.loaded / seconds : 0;
      var left = rate > 0 && total > ev.loaded ? Math.ceil((total - ev.loaded) / rate) : 0;
      var pct = total > 0 ? Math.floor(100 * ev.loaded / total) : 0;
      say(form, "upload", ev.loaded, total, "Sending the file: " + megabytes(ev.loaded) + " of " + megabytes(total) +
        " (" + pct + " %), " + megabytes(rate) + "/s" + (left ? ", " + left + " s left" : "") + ".");
    });
    xhr.upload.addEventListener("load", function () {
      var sent = Date.now();
      var tick = function () {
        var s = Math.round((Date.now() - sent) / 1000);
        say(form, "server", size, size, "File sent. The server is checking every row" +
          (action === form.action ? " and importing them" : "") + "… " + s + " s");
      };
      tick();
      ticking = window.setInterval(tick, 1000);
    });
    xhr.addEventListener("load", function () {
      if (ticking) { window.clearInterval(ticking); }
      var type = xhr.getResponseHeader("Content-Type") || "";
      if (/attachment/.test(xhr.getResponseHeader("Content-Disposition") || "")) {
        download(xhr);
        say(form, "done", size, size, "Done: the checked file has been downloaded.");
        return;
      }
      if (type.indexOf("text/html") !== 0) { form.submit(); return; }
      xhr.response.text().then(function (html) {
        say(form, "done", size, size, "Done.");
        replacePage(html, xhr.responseURL);
      });
    });
    xhr.addEventListener("error", function () {
      if (ticking) { window.clearInterval(ticking); }
      say(form, "error", 0, size, "The connection was lost before the answer came: nothing may have been imported. Send the file again (importing the same file twice creates nothing new).");
    });
    say(form, "upload", 0, size, "Sending the file…");
    xhr.send(data);
  }

  function wire(root) {
    Array.prototype.forEach.call(root.querySelectorAll("form[data-upload-progress]"), function (form) {
      if (form.dataset.wired) { return; }
      form.dataset.wired = "true";
      form.addEventListener("submit", function (ev) {
        if (!window.FormData || !window.XMLHttpRequest || !window.DOMParser) { return; }
        ev.preventDefault();
        Array.prototype.forEach.call(form.querySelectorAll("button[type=submit]"), function (b) { b.disabled = true; });
        send(form, ev.submitter);
      });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { wire(document); });
  } else {
    wire(document);
  }
}());
