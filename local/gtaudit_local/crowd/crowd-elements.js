/*
 * gtaudit's local stand-in for https://assets.crowd.aws/crowd-html-elements.js.
 *
 * `gtaudit preview` and the local runtime serve this file in place of AWS's script, so the very
 * templates that run in SageMaker Ground Truth run offline. It implements the elements gtaudit's
 * templates use, with the attributes and answer shapes of the Crowd HTML Elements reference:
 * crowd-form, crowd-button, crowd-checkbox, crowd-radio-group, crowd-radio-button,
 * crowd-text-area, crowd-slider, crowd-instructions, crowd-alert; crowd-semantic-segmentation, the
 * painting tool, is crowd-segmentation.js, loaded right after this file.
 *
 * Configuration (set by the server before this script): window.CROWD_LOCAL = {submitUrl, mode}.
 * On submit, crowd-form builds the answer object GT stores as answerContent, shows it (mode
 * "preview") and POSTs it as JSON to submitUrl when one is given.
 *
 * Every text that comes from attributes is written with textContent, never innerHTML.
 * No external libraries.
 */
(function () {
  "use strict";
  if (window.customElements.get("crowd-form")) return;
  var CONFIG = window.CROWD_LOCAL || {};
  // Ground Truth's label colours in label order (matplotlib tab10, then tab20's light tones ...);
  // the same list as gtaudit.labels.PALETTE.
  var PALETTE = ["#2ca02c", "#1f77b4", "#ff7f0e", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#98df8a", "#aec7e8", "#ffbb78", "#ff9896", "#c5b0d5", "#c49c94",
    "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5", "#393b79", "#637939", "#8c6d31", "#843c39"];

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = String(text);
    return e;
  }
  function boolAttr(node, name) { return node.hasAttribute(name) && node.getAttribute(name) !== "false"; }
  // GT's own examples write attributes as JS-ish literals (single quotes); accept both.
  function parseLoose(text) {
    if (text == null || text === "") return null;
    try { return JSON.parse(text); } catch (e) { /* fall through */ }
    try { return JSON.parse(text.replace(/'/g, '"')); } catch (e) { return null; }
  }
  function hexToRgb(hex) {
    var m = /^#?([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(String(hex || "").trim());
    return m ? [parseInt(m[1], 16), parseInt(m[2], 16), parseInt(m[3], 16)] : null;
  }

  // Base: set up once the element's children are parsed (the script runs before the body).
  class CrowdElement extends HTMLElement {
    connectedCallback() {
      if (this._ready) return;
      this._ready = true;
      if (document.readyState === "loading") {
        document.addEventListener("DOMContentLoaded", () => this.setup(), { once: true });
      } else {
        this.setup();
      }
    }
    setup() {}
  }

  // crowd-form
  class CrowdForm extends CrowdElement {
    setup() {
      this.classList.add("crowd-form");
      if (!this.querySelector('crowd-button[form-action="submit"]')) {
        var b = document.createElement("crowd-button");
        b.setAttribute("form-action", "submit");
        b.setAttribute("variant", "primary");
        b.textContent = "Submit";
        var bar = el("div", "crowd-form-submit");
        bar.appendChild(b);
        this.appendChild(bar);
      }
    }
    /** The answer object: one key per named crowd element or plain input, as GT submits it. */
    collect() {
      var out = {};
      var nodes = this.querySelectorAll("[name]");
      for (var i = 0; i < nodes.length; i++) {
        var n = nodes[i], name = n.getAttribute("name");
        if (!name) continue;
        var tag = n.tagName.toLowerCase();
        if (tag.indexOf("crowd-") === 0) {
          if (typeof n.answer !== "function") continue;
          var v = n.answer();
          if (v === undefined) continue;
          if (v && typeof v === "object" && !Array.isArray(v) && out[name] && typeof out[name] === "object") {
            Object.assign(out[name], v);   // checkboxes/radio buttons sharing a name: one object
          } else {
            out[name] = v;
          }
        } else if (tag === "input" || tag === "textarea" || tag === "select") {
          if (n.closest("[data-crowd-internal]")) continue;
          if ((n.type === "checkbox" || n.type === "radio") && !n.checked) continue;
          out[name] = n.value;
        }
      }
      return out;
    }
    submit() {
      if (this._submitted) return false;
      var ev = new Event("submit", { bubbles: true, cancelable: true });
      if (!this.dispatchEvent(ev)) return false;
      var bad = Array.prototype.filter.call(this.querySelectorAll("[required]"), function (n) {
        return typeof n.isValid === "function" && !n.isValid();
      });
      if (bad.length) { bad[0].scrollIntoView({ block: "center" }); if (bad[0].focus) bad[0].focus(); return false; }
      var answer = this.collect();
      this._submitted = true;
      window.__crowdAnswer = answer;
      this.dispatchEvent(new CustomEvent("crowd-submitted", { bubbles: true, detail: answer }));
      showAnswer(answer);
      if (CONFIG.submitUrl) {
        fetch(CONFIG.submitUrl, { method: "POST", headers: { "Content-Type": "application/json", "X-Gtaudit-Active-Seconds": activeSeconds() }, body: JSON.stringify(answer) })
          .then(function (r) { setStatus(r.ok ? "sent" : "error " + r.status); if (r.ok) awaitNextTask(); })
          .catch(function (e) { setStatus("error " + e); });
      }
      return true;
    }
  }

  // Active time, as GT's timeSpentInSeconds: seconds the page was visible with input in the last minute.
  var active = 0, lastInput = Date.now();
  ["pointerdown", "pointermove", "keydown", "wheel"].forEach(function (t) {
    document.addEventListener(t, function () { lastInput = Date.now(); }, { capture: true, passive: true });
  });
  setInterval(function () {
    if (document.visibilityState === "visible" && Date.now() - lastInput < 60000) active += 1;
  }, 1000);
  function activeSeconds() { return String(active); }
  // Runtime: once this task is answered or released, open the next one when the server has it.
  function awaitNextTask() {
    if (CONFIG.mode !== "runtime") return;
    setInterval(function () {
      fetch("/state").then(function (r) { return r.json(); }).then(function (st) {
        if (st.version !== CONFIG.version) location.reload();
      }).catch(function () {});
    }, 1000);
  }
  if (CONFIG.mode === "runtime" && CONFIG.version != null) {
    document.addEventListener("DOMContentLoaded", function () {
      var bar = el("div", "crowd-local-bar");
      var rel = el("button", "crowd-local-release", "Release task");
      rel.type = "button";
      rel.title = "Give this task back without answering (GT: Release task)";
      rel.addEventListener("click", function () {
        rel.disabled = true;
        fetch("/release?v=" + CONFIG.version, { method: "POST", headers: { "X-Gtaudit-Active-Seconds": activeSeconds() } })
          .then(function () { document.body.textContent = "Task released. Waiting for the next one..."; awaitNextTask(); });
      });
      bar.appendChild(rel);
      document.body.appendChild(bar);
    });
  }
  function setStatus(text) {
    var s = document.getElementById("crowd-answer-status");
    if (s) s.textContent = text;
    document.documentElement.setAttribute("data-crowd-submit", text);
  }
  function showAnswer(answer) {
    var panel = el("div", "crowd-answer-panel");
    panel.id = "crowd-answer-panel";
    panel.setAttribute("role", "dialog");
    var h = el("h2", null, CONFIG.mode === "runtime" ? "Submitted. Thank you." : "Submitted answer (answerContent, as GT stores it)");
    var status = el("span", "crowd-answer-status", CONFIG.submitUrl ? "sending..." : "not sent (preview)");
    status.id = "crowd-answer-status";
    var pre = el("pre", null, JSON.stringify(answer, function (k, v) {
      return (k === "pngImageData" && typeof v === "string" && v.length > 120) ? v.slice(0, 60) + "... (" + v.length + " chars)" : v;
    }, 2));
    pre.id = "crowd-answer";
    panel.appendChild(h); panel.appendChild(status);
    if (CONFIG.mode === "runtime") {
      panel.appendChild(el("p", null, "The next task, if any, opens in this tab."));
    } else {
      panel.appendChild(pre);
    }
    document.body.appendChild(panel);
  }

  // ---------------------------------------------------------------- crowd-button
  class CrowdButton extends CrowdElement {
    setup() {
      var b = el("button", "crowd-button");
      b.type = "button";
      b.setAttribute("data-crowd-internal", "");
      while (this.firstChild) b.appendChild(this.firstChild);
      if (this.getAttribute("variant") === "primary") b.classList.add("primary");
      if (boolAttr(this, "disabled")) b.disabled = true;
      this.appendChild(b);
      this._button = b;
      b.addEventListener("click", (e) => {
        e.stopPropagation();
        if (this.getAttribute("form-action") === "submit") {
          var f = this.closest("crowd-form");
          if (f) f.submit();
        } else {
          this.dispatchEvent(new MouseEvent("click", { bubbles: true }));
        }
      });
    }
    click() { if (this._button) this._button.click(); else super.click(); }
  }

  // ---------------------------------------------------------------- check box / radio button
  class Toggle extends CrowdElement {
    get checked() { return !!this._checked; }
    set checked(v) {
      this._checked = !!v;
      if (this._input) this._input.checked = this._checked;
      this.setAttribute("aria-checked", String(this._checked));
    }
    get value() { return this.getAttribute("value") || "on"; }
    answer() { var o = {}; o[this.value] = this.checked; return o; }
    build(type) {
      this._checked = this._checked || boolAttr(this, "checked");
      var label = el("label", "crowd-" + type);
      label.setAttribute("data-crowd-internal", "");
      var input = el("input");
      input.type = type === "radio" ? "radio" : "checkbox";
      input.checked = this._checked;
      input.disabled = boolAttr(this, "disabled");
      var text = el("span", "crowd-toggle-text");
      while (this.firstChild) text.appendChild(this.firstChild);
      label.appendChild(input); label.appendChild(text);
      this.appendChild(label);
      this._input = input;
      this.setAttribute("aria-checked", String(this._checked));
      return input;
    }
    isValid() { return !boolAttr(this, "required") || this.checked; }
  }
  class CrowdCheckbox extends Toggle {
    setup() {
      var input = this.build("checkbox");
      input.addEventListener("change", () => { this.checked = input.checked; this.dispatchEvent(new Event("change", { bubbles: true })); });
    }
  }
  class CrowdRadioButton extends Toggle {
    setup() {
      var input = this.build("radio");
      input.addEventListener("click", () => { this.select(); });
    }
    set checked(v) {
      super.checked = v;
      if (v) this.uncheckSiblings();
    }
    get checked() { return super.checked; }
    uncheckSiblings() {
      var group = this.closest("crowd-radio-group");
      if (!group) return;
      var others = group.querySelectorAll("crowd-radio-button");
      for (var i = 0; i < others.length; i++) if (others[i] !== this && others[i].checked) others[i].checked = false;
    }
    select() {
      this.checked = true;
      this.dispatchEvent(new Event("change", { bubbles: true }));
    }
  }
  class CrowdRadioGroup extends CrowdElement {
    setup() { this.setAttribute("role", "radiogroup"); }
    answer() { return undefined; }
  }

  // ---------------------------------------------------------------- crowd-text-area
  class CrowdTextArea extends CrowdElement {
    setup() {
      var wrap = el("label", "crowd-text-area");
      wrap.setAttribute("data-crowd-internal", "");
      if (this.getAttribute("label")) wrap.appendChild(el("span", "crowd-text-area-label", this.getAttribute("label")));
      var ta = el("textarea");
      ta.rows = Number(this.getAttribute("rows")) || 2;
      if (this.getAttribute("placeholder")) ta.placeholder = this.getAttribute("placeholder");
      if (this.getAttribute("max-length")) ta.maxLength = Number(this.getAttribute("max-length"));
      ta.disabled = boolAttr(this, "disabled");
      ta.value = this._value != null ? this._value : (this.getAttribute("value") || this.textContent.trim());
      this.textContent = "";
      wrap.appendChild(ta);
      if (boolAttr(this, "char-counter")) {
        var counter = el("span", "crowd-text-area-counter");
        var upd = function () { counter.textContent = ta.value.length + (ta.maxLength > 0 ? " / " + ta.maxLength : ""); };
        ta.addEventListener("input", upd); upd();
        wrap.appendChild(counter);
      }
      this.appendChild(wrap);
      this._ta = ta;
    }
    get value() { return this._ta ? this._ta.value : (this._value || ""); }
    set value(v) { if (this._ta) this._ta.value = String(v); else this._value = String(v); }
    focus() { if (this._ta) this._ta.focus(); }
    answer() { return this.value; }
    isValid() { return !boolAttr(this, "required") || this.value.trim() !== ""; }
  }

  // ---------------------------------------------------------------- crowd-slider
  class CrowdSlider extends CrowdElement {
    setup() {
      var wrap = el("span", "crowd-slider");
      wrap.setAttribute("data-crowd-internal", "");
      var r = el("input");
      r.type = "range";
      r.min = this.getAttribute("min") || "0";
      r.max = this.getAttribute("max") || "100";
      r.step = this.getAttribute("step") || "1";
      r.value = this.getAttribute("value") || r.min;
      r.disabled = boolAttr(this, "disabled");
      wrap.appendChild(r);
      if (boolAttr(this, "pin") || boolAttr(this, "editable")) {
        var pin = el("output", "crowd-slider-pin", r.value);
        r.addEventListener("input", function () { pin.textContent = r.value; });
        wrap.appendChild(pin);
      }
      r.addEventListener("input", () => this.dispatchEvent(new Event("input", { bubbles: true })));
      r.addEventListener("change", () => this.dispatchEvent(new Event("change", { bubbles: true })));
      this.appendChild(wrap);
      this._r = r;
    }
    get value() { return this._r ? Number(this._r.value) : Number(this.getAttribute("value") || 0); }
    set value(v) { if (this._r) this._r.value = String(v); }
    answer() { return this.value; }
  }

  // ---------------------------------------------------------------- crowd-instructions / crowd-alert
  function modal(title, content) {
    var back = el("div", "crowd-modal-back");
    var box = el("div", "crowd-modal");
    box.setAttribute("role", "dialog");
    var head = el("div", "crowd-modal-head");
    head.appendChild(el("strong", null, title));
    var close = el("button", "crowd-modal-close", "×");
    close.type = "button";
    head.appendChild(close);
    box.appendChild(head);
    box.appendChild(content);
    back.appendChild(box);
    back.hidden = true;
    document.body.appendChild(back);
    var hide = function () { back.hidden = true; };
    close.addEventListener("click", hide);
    back.addEventListener("click", function (e) { if (e.target === back) hide(); });
    document.addEventListener("keydown", function (e) { if (e.key === "Escape") hide(); });
    return { show: function () { back.hidden = false; }, hide: hide, node: back };
  }
  class CrowdInstructions extends CrowdElement {
    setup() {
      var body = el("div", "crowd-instructions-body");
      var regions = ["short-summary", "detailed-instructions", "positive-example", "negative-example"];
      regions.forEach((r) => {
        var node = this.querySelector(r);
        if (node) body.appendChild(node);
      });
      var link = el("button", "crowd-instructions-link", this.getAttribute("link-text") || "View instructions");
      link.type = "button";
      var m = modal(this.getAttribute("link-text") || "Instructions", body);
      link.addEventListener("click", m.show);
      this.textContent = "";
      this.appendChild(link);
    }
  }
  class CrowdAlert extends CrowdElement {
    setup() {
      this.classList.add("crowd-alert", "crowd-alert-" + (this.getAttribute("type") || "info"));
      this.setAttribute("role", "alert");
      if (boolAttr(this, "dismissible")) {
        var x = el("button", "crowd-alert-close", "×");
        x.type = "button";
        x.addEventListener("click", () => { this.hidden = true; });
        this.appendChild(x);
      }
    }
  }

  var defs = {
    "crowd-form": CrowdForm, "crowd-button": CrowdButton, "crowd-checkbox": CrowdCheckbox,
    "crowd-radio-group": CrowdRadioGroup, "crowd-radio-button": CrowdRadioButton,
    "crowd-text-area": CrowdTextArea, "crowd-slider": CrowdSlider, "crowd-instructions": CrowdInstructions,
    "crowd-alert": CrowdAlert
  };
  Object.keys(defs).forEach(function (name) { window.customElements.define(name, defs[name]); });
  // What crowd-segmentation.js (the painting tool, loaded next) builds on.
  window.gtauditCrowd = { PALETTE: PALETTE, el: el, parseLoose: parseLoose, hexToRgb: hexToRgb, modal: modal,
    CrowdElement: CrowdElement };
})();
