// devatar UI enhancements (plain JavaScript, no build step). Every page works without this file:
// it adds live progress (Server-Sent Events from /api/runs/{id}/events and a training's events, no polling),
// drag-and-drop upload and the live log tail. When a run ends, the live region is fetched once and swapped in.
(function () {
  "use strict";

  var watching = {};

  function root() {
    return (document.body && document.body.getAttribute("data-root")) || "./";
  }

  function stateOf(event) {
    if (event === "started") return "running";
    if (event === "finished") return "succeeded";
    return "failed";
  }

  function setStatus(el, word) {
    if (!el) return;
    el.textContent = word;
    el.setAttribute("data-status", word);
  }

  // One step event: update the scene's status badge, its step chips/rows and its progress bar.
  function markStep(d) {
    if (!d.sceneId) {
      if (d.event === "started") setStatus(document.getElementById("project-status"), "generating");
      return;
    }
    var scopes = document.querySelectorAll('[data-scene="' + d.sceneId + '"]');
    Array.prototype.forEach.call(scopes, function (scope) {
      if (d.event === "started" || d.event === "finished") {
        var badge = scope.querySelector(".scene-status");
        if (badge && badge.getAttribute("data-status") !== "generating") setStatus(badge, "generating");
      }
      var state = stateOf(d.event);
      Array.prototype.forEach.call(scope.querySelectorAll('[data-step="' + d.step + '"]'), function (el) {
        el.setAttribute("data-state", state);
        var cell = el.querySelector(".step-state");
        if (cell) cell.textContent = state + (d.cached ? " (cached)" : "");
      });
      var bar = scope.querySelector("progress.steps-progress");
      if (bar) bar.value = scope.querySelectorAll('.chip[data-state="succeeded"]').length;
    });
  }

  // Fetch the page once and swap its live region in (or reload without htmx).
  function refresh() {
    if (!document.getElementById("live")) return;
    if (window.htmx && window.htmx.ajax) {
      window.htmx.ajax("GET", window.location.href, { target: "#live", select: "#live", swap: "outerHTML" });
    } else {
      window.location.reload();
    }
  }

  function watch(id) {
    if (!id || watching[id] || !window.EventSource) return;
    var es = new EventSource(root() + "api/runs/" + encodeURIComponent(id) + "/events");
    watching[id] = es;
    es.addEventListener("step", function (e) {
      try { markStep(JSON.parse(e.data)); } catch (_) { /* ignore a malformed event */ }
    });
    es.addEventListener("finished", function () {
      es.close();
      delete watching[id];
      refresh();
    });
  }

  function bindDrop(zone) {
    if (zone.getAttribute("data-bound")) return;
    zone.setAttribute("data-bound", "1");
    var input = document.getElementById(zone.getAttribute("data-dropzone"));
    if (!input) return;
    var out = zone.querySelector(".drop-name");
    function show() {
      if (!out || !input.files || !input.files.length) return;
      var more = input.files.length - 1;
      out.textContent = "Selected: " + input.files[0].name + (more > 0 ? " and " + more + " more" : "");
    }
    input.addEventListener("change", show);
    ["dragenter", "dragover"].forEach(function (t) {
      zone.addEventListener(t, function (e) { e.preventDefault(); zone.classList.add("over"); });
    });
    ["dragleave", "drop"].forEach(function (t) {
      zone.addEventListener(t, function (e) { e.preventDefault(); zone.classList.remove("over"); });
    });
    zone.addEventListener("drop", function (e) {
      if (e.dataTransfer && e.dataTransfer.files && e.dataTransfer.files.length) {
        input.files = e.dataTransfer.files;
        show();
      }
    });
  }

  function bindTail(body) {
    if (body.getAttribute("data-bound") || !window.EventSource) return;
    body.setAttribute("data-bound", "1");
    var es = new EventSource(body.getAttribute("data-tail"));
    es.addEventListener("row", function (e) {
      try {
        body.insertAdjacentHTML("afterbegin", JSON.parse(e.data));
        var table = body.closest("table");
        if (table) table.hidden = false;
        var none = document.getElementById("no-rows");
        if (none) none.parentNode.removeChild(none);
      } catch (_) { /* ignore a malformed event */ }
    });
  }

  // "Upload and use": uploads a file from inside another form (which keeps what was typed) and chooses it
  // in that form's select.
  function bindInlineUpload(box) {
    if (box.getAttribute("data-bound") || !window.fetch || !window.FormData) return;
    box.setAttribute("data-bound", "1");
    var select = document.getElementById(box.getAttribute("data-inline-upload"));
    var input = box.querySelector('input[type="file"]');
    var button = box.querySelector("button");
    var out = box.querySelector(".inline-upload-result");
    var form = box.closest("form");
    var csrf = form && form.querySelector('input[name="csrf"]');
    if (!select || !input || !button || !out || !csrf) return;
    function say(text, bad) {
      out.textContent = text;
      out.className = "inline-upload-result" + (bad ? " error-text" : " ok");
    }
    button.addEventListener("click", function () {
      if (!input.files || !input.files.length) { say("Choose a file first.", true); return; }
      var data = new FormData();
      data.append("csrf", csrf.value);
      data.append("kind", box.getAttribute("data-kind"));
      data.append("file", input.files[0]);
      button.disabled = true;
      say("Uploading…", false);
      fetch(box.getAttribute("data-url"), { method: "POST", body: data, credentials: "same-origin" }).then(function (r) {
        return r.text().then(function (text) {
          button.disabled = false;
          if (r.status !== 201) { say(text, true); return; }
          select.insertAdjacentHTML("beforeend", text);
          var added = select.options[select.options.length - 1];
          select.value = added.value;
          input.value = "";
          say("Uploaded and chosen: " + added.textContent, false);
        });
      }, function () {
        button.disabled = false;
        say("The server did not answer. Check that it is running and try again.", true);
      });
    });
  }

  // After a successful training: the identity form's LoRA fields take what the refreshed section says the
  // identity now uses, so saving the form keeps the trained LoRA.
  function syncLora() {
    var src = document.getElementById("twin-lora");
    if (!src) return;
    [["f-loraUrl", "data-lora-url"], ["f-loraAssetId", "data-lora-asset"], ["f-baseModel", "data-base-model"]].forEach(function (p) {
      var field = document.getElementById(p[0]);
      if (field) field.value = src.getAttribute(p[1]) || "";
    });
  }

  // The identity page while a training runs: queue position and Fal's latest line from the training's event
  // stream; at its end the twin section is fetched once and swapped in (trainings, verdict, LoRA).
  function bindTraining(box) {
    if (box.getAttribute("data-bound") || !window.EventSource) return;
    box.setAttribute("data-bound", "1");
    var queue = box.querySelector(".training-queue");
    var latest = box.querySelector(".training-latest");
    var es = new EventSource(box.getAttribute("data-training-events"));
    es.addEventListener("progress", function (e) {
      try {
        var d = JSON.parse(e.data);
        var queued = d.queuePosition !== null && d.queuePosition !== undefined;
        if (queue) queue.textContent = queued ? "In Fal's queue at position " + d.queuePosition + "." : "";
        if (latest && !queued) latest.textContent = d.message;
      } catch (_) { /* ignore a malformed event */ }
    });
    es.addEventListener("status", function (e) {
      try { box.setAttribute("data-status", JSON.parse(e.data).status); } catch (_) { /* ignore */ }
    });
    es.addEventListener("done", function (e) {
      es.close();
      var trained = false;
      try { trained = JSON.parse(e.data).status === "succeeded"; } catch (_) { /* refresh all the same */ }
      if (window.htmx && window.htmx.ajax) {
        window.htmx.ajax("GET", window.location.href, { target: "#twin", select: "#twin", swap: "outerHTML" })
          .then(function () { if (trained) syncLora(); });
      } else {
        window.location.reload();
      }
    });
  }

  // On a phone the navigation folds behind a Menu button (without this script it stays open).
  function bindMenu(sidebar) {
    if (sidebar.getAttribute("data-bound")) return;
    sidebar.setAttribute("data-bound", "1");
    var button = sidebar.querySelector(".menu-toggle");
    if (!button) return;
    sidebar.classList.add("collapsible");
    button.addEventListener("click", function () {
      var open = sidebar.classList.toggle("open");
      button.setAttribute("aria-expanded", open ? "true" : "false");
    });
  }

  // The scene form's speech estimate follows the dialogue and target as they are typed (the same rule as the
  // server's: about 2.6 words a second plus a breath; flagged when more than 2 s off the target).
  function bindSpeech(out) {
    if (out.getAttribute("data-bound")) return;
    out.setAttribute("data-bound", "1");
    var dialogue = document.getElementById("f-dialogue");
    var target = document.getElementById("f-targetDuration");
    if (!dialogue) return;
    function update() {
      var text = dialogue.value.trim();
      var words = text ? text.split(/\s+/).length : 0;
      if (!words) { out.textContent = ""; return; }
      var s = words / 2.6 + 0.4, line = "speech ≈ " + s.toFixed(1) + " s (estimated)", off = false;
      var t = target ? parseFloat(target.value) : NaN;
      if (!isNaN(t)) {
        off = Math.abs(s - t) > 2;
        line += " · target " + t + " s" + (off ? (s > t ? ": longer than the target" : ": shorter than the target") : "");
      }
      out.textContent = line;
      out.classList.toggle("warn-text", off);
    }
    dialogue.addEventListener("input", update);
    if (target) target.addEventListener("input", update);
  }

  function init(scope) {
    var all = function (sel) {
      var found = Array.prototype.slice.call(scope.querySelectorAll(sel));
      if (scope.matches && scope.matches(sel)) found.unshift(scope);
      return found;
    };
    all("[data-runs]").forEach(function (el) {
      el.getAttribute("data-runs").split(" ").forEach(watch);
    });
    all("[data-dropzone]").forEach(bindDrop);
    all("[data-tail]").forEach(bindTail);
    all(".sidebar").forEach(bindMenu);
    all("[data-inline-upload]").forEach(bindInlineUpload);
    all("#speech-estimate").forEach(bindSpeech);
    all("[data-training-events]").forEach(bindTraining);
  }

  // htmx does not swap error responses; show their message where the result would have gone.
  document.addEventListener("htmx:responseError", function (e) {
    var target = e.detail.target;
    if (target && target.hasAttribute("data-error-target")) target.innerHTML = e.detail.xhr.responseText;
  });
  document.addEventListener("htmx:sendError", function (e) {
    var target = e.detail.target;
    if (target && target.hasAttribute("data-error-target")) {
      target.innerHTML = '<p class="error-box" role="alert">The server did not answer. Check that it is running and try again.</p>';
    }
  });

  document.addEventListener("htmx:load", function (e) { init(e.detail.elt); });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { init(document.body); });
  } else {
    init(document.body);
  }
})();
