/*
 * gtaudit's local crowd-semantic-segmentation: the painting tool of the labeling template (brush,
 * polygon, eraser, undo, zoom, initial-value), with the answer shape of the Crowd HTML Elements
 * reference. Loaded right after crowd-elements.js, whose helpers it uses (window.gtauditCrowd).
 *
 * Every text that comes from attributes is written with textContent, never innerHTML.
 */
(function () {
  "use strict";
  var C = window.gtauditCrowd;
  if (!C || window.customElements.get("crowd-semantic-segmentation")) return;
  var PALETTE = C.PALETTE, el = C.el, parseLoose = C.parseLoose, hexToRgb = C.hexToRgb, modal = C.modal,
    CrowdElement = C.CrowdElement;

  class CrowdSemanticSegmentation extends CrowdElement {
    setup() {
      var self = this;
      var names = parseLoose(this.getAttribute("labels"));
      if (!Array.isArray(names)) names = [];
      names = names.map(String);
      var initial = parseLoose(this.getAttribute("initial-value"));
      var mappings = (initial && initial.labelMappings) || {};
      var used = {};
      Object.keys(mappings).forEach(function (k) { var c = (mappings[k] || {}).color; if (c) used[String(c).toLowerCase()] = true; });
      var free = PALETTE.filter(function (c) { return !used[c]; });
      this.labels = names.map(function (name, i) {
        var given = mappings[name] && hexToRgb(mappings[name].color) ? String(mappings[name].color).toLowerCase() : null;
        var color = given || (PALETTE[i] && !used[PALETTE[i]] ? PALETTE[i] : free.shift() || "#000000");
        return { name: name, color: color, rgb: hexToRgb(color) };
      });
      this.current = 1;
      this.tool = "brush";
      this.brush = 12;
      this.zoom = 1; this.tx = 0; this.ty = 0;
      this.undoStack = []; this.redoStack = [];
      this.modified = false;
      this.hasInitial = !!initial;
      this.poly = [];

      var full = this.querySelector("full-instructions");
      var short = this.querySelector("short-instructions");

      // Layout: header, then sidebar (labels, tools, instructions) and the image viewport.
      var root = el("div", "css-root");
      root.setAttribute("data-crowd-internal", "");
      var header = el("h2", "css-header", this.getAttribute("header") || "");
      var body = el("div", "css-body");
      var side = el("div", "css-side");
      var main = el("div", "css-main");
      root.appendChild(header); root.appendChild(body);
      body.appendChild(side); body.appendChild(main);

      // short instructions first: in a rework round they carry the auditor's feedback
      if (short) { short.classList.add("css-short"); side.appendChild(short); }
      // label picker
      side.appendChild(el("div", "css-title", "Labels"));
      var list = el("div", "css-labels");
      list.setAttribute("role", "radiogroup");
      this.labelButtons = this.labels.map(function (lb, i) {
        var b = el("button", "css-label");
        b.type = "button";
        b.setAttribute("data-label", lb.name);
        var sw = el("span", "css-swatch"); sw.style.background = lb.color;
        b.appendChild(sw);
        b.appendChild(el("span", "css-label-name", lb.name));
        if (i < 9) b.appendChild(el("kbd", null, String(i + 1)));
        b.addEventListener("click", function () { self.pickLabel(i + 1); });
        list.appendChild(b);
        return b;
      });
      side.appendChild(list);

      // tools
      side.appendChild(el("div", "css-title", "Tools"));
      var tools = el("div", "css-tools");
      this.toolButtons = {};
      [["brush", "Brush", "B"], ["polygon", "Polygon", "P"], ["eraser", "Eraser", "E"], ["pan", "Move", "H"]].forEach(function (t) {
        var b = el("button", "css-tool");
        b.type = "button";
        b.setAttribute("data-tool", t[0]);
        b.appendChild(document.createTextNode(t[1] + " "));
        b.appendChild(el("kbd", null, t[2]));
        b.addEventListener("click", function () { self.pickTool(t[0]); });
        tools.appendChild(b);
        self.toolButtons[t[0]] = b;
      });
      side.appendChild(tools);
      var sizeRow = el("label", "css-row");
      sizeRow.appendChild(document.createTextNode("Brush size "));
      var size = el("input"); size.type = "range"; size.min = "1"; size.max = "100"; size.value = String(this.brush);
      size.className = "css-size";
      var sizeOut = el("span", "css-size-out", this.brush + " px");
      size.addEventListener("input", function () { self.brush = Number(size.value); sizeOut.textContent = size.value + " px"; });
      sizeRow.appendChild(size); sizeRow.appendChild(sizeOut);
      side.appendChild(sizeRow);
      this.sizeInput = size; this.sizeOut = sizeOut;
      var opRow = el("label", "css-row");
      opRow.appendChild(document.createTextNode("Label opacity "));
      var op = el("input"); op.type = "range"; op.min = "0"; op.max = "100"; op.value = "60";
      op.addEventListener("input", function () { self.labelCanvas.style.opacity = String(Number(op.value) / 100); });
      opRow.appendChild(op);
      side.appendChild(opRow);
      var acts = el("div", "css-tools");
      [["undo", "Undo", "Ctrl+Z"], ["redo", "Redo", "Ctrl+Y"], ["zoomin", "Zoom +", "+"], ["zoomout", "Zoom −", "−"], ["fit", "Fit", "F"]].forEach(function (a) {
        var b = el("button", "css-tool");
        b.type = "button";
        b.setAttribute("data-action", a[0]);
        b.appendChild(document.createTextNode(a[1] + " "));
        b.appendChild(el("kbd", null, a[2]));
        b.addEventListener("click", function () { self.action(a[0]); });
        acts.appendChild(b);
      });
      side.appendChild(acts);
      if (full) {
        var fullBtn = el("button", "css-tool css-full-btn", "Full instructions");
        fullBtn.type = "button";
        var m = modal(full.getAttribute("header") || "Instructions", full);
        fullBtn.addEventListener("click", m.show);
        side.appendChild(fullBtn);
      }

      // viewport
      var vp = el("div", "css-viewport");
      var world = el("div", "css-world");
      var img = el("img", "css-image");
      img.alt = "";
      img.draggable = false;
      var lc = el("canvas", "css-labels-canvas");
      var svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
      svg.setAttribute("class", "css-poly");
      var cursor = el("div", "css-cursor");
      world.appendChild(img); world.appendChild(lc); world.appendChild(svg);
      vp.appendChild(world); vp.appendChild(cursor);
      main.appendChild(vp);
      var status = el("div", "css-status", "Loading image...");
      main.appendChild(status);
      this.textContent = "";
      this.appendChild(root);
      Object.assign(this, { vp: vp, world: world, img: img, labelCanvas: lc, svg: svg, cursorEl: cursor, statusEl: status });

      img.addEventListener("load", function () { self.imageLoaded(initial); });
      img.addEventListener("error", function () { status.textContent = "The image could not be loaded."; });
      img.src = this.getAttribute("src") || "";
      this.pickLabel(1);
      this.pickTool("brush");
      this.bindPointer();
      this.bindKeys();
      window.addEventListener("resize", function () { if (self.W) self.fit(); });
    }

    imageLoaded(initial) {
      var W = this.img.naturalWidth, H = this.img.naturalHeight;
      this.W = W; this.H = H;
      this.map = new Uint8Array(W * H);
      this.labelCanvas.width = W; this.labelCanvas.height = H;
      this.labelCanvas.style.opacity = "0.6";
      this.ctx = this.labelCanvas.getContext("2d");
      this.imageData = this.ctx.createImageData(W, H);
      this.world.style.width = W + "px"; this.world.style.height = H + "px";
      this.svg.setAttribute("viewBox", "0 0 " + W + " " + H);
      this.svg.setAttribute("width", W); this.svg.setAttribute("height", H);
      this.fit();
      this.setStatus();
      if (initial && initial.src) this.loadInitial(initial.src);
      else this.setAttribute("data-ready", "");
    }
    loadInitial(src) {
      var self = this;
      var m = new Image();
      m.crossOrigin = "anonymous";
      m.onload = function () {
        var c = document.createElement("canvas");
        c.width = self.W; c.height = self.H;
        var x = c.getContext("2d");
        x.imageSmoothingEnabled = false;
        x.drawImage(m, 0, 0, self.W, self.H);
        var px = x.getImageData(0, 0, self.W, self.H).data;
        var lookup = {};
        self.labels.forEach(function (lb, i) { lookup[(lb.rgb[0] << 16) | (lb.rgb[1] << 8) | lb.rgb[2]] = i + 1; });
        for (var i = 0, n = self.W * self.H; i < n; i++) {
          if (px[i * 4 + 3] < 128) continue;
          self.map[i] = lookup[(px[i * 4] << 16) | (px[i * 4 + 1] << 8) | px[i * 4 + 2]] || 0;
        }
        self.redraw(0, 0, self.W, self.H);
        self.setAttribute("data-ready", "");
      };
      // A cross-origin mask needs CORS (GT: on the bucket); without it the image cannot be read.
      m.onerror = function () { self.statusEl.textContent = "The previous mask could not be loaded."; self.setAttribute("data-ready", ""); };
      m.src = src;
    }
    setStatus(extra) {
      var lb = this.labels[this.current - 1];
      var s = (this.W ? this.W + "×" + this.H + " px · " : "") + "zoom " + Math.round(this.zoom * 100) + "% · " +
        this.tool + (lb ? " · " + lb.name : "");
      this.statusEl.textContent = extra ? s + " · " + extra : s;
    }
    pickLabel(i) {
      if (i < 1 || i > this.labels.length) return;
      this.current = i;
      this.labelButtons.forEach(function (b, k) { b.setAttribute("aria-pressed", String(k + 1 === i)); });
      if (this.tool === "eraser" || this.tool === "pan") this.pickTool("brush");
      this.setStatus();
    }
    pickTool(t) {
      this.tool = t;
      this.poly = []; this.drawPoly();
      for (var k in this.toolButtons) this.toolButtons[k].setAttribute("aria-pressed", String(k === t));
      this.vp.setAttribute("data-tool", t);
      this.setStatus();
    }
    action(a) {
      if (a === "undo") this.undo();
      else if (a === "redo") this.redo();
      else if (a === "zoomin") this.zoomAt(1.25);
      else if (a === "zoomout") this.zoomAt(0.8);
      else if (a === "fit") this.fit();
    }
    fit() {
      var r = this.vp.getBoundingClientRect();
      if (!this.W || !r.width) return;
      this.zoom = Math.min(r.width / this.W, r.height / this.H);
      this.tx = (r.width - this.W * this.zoom) / 2; this.ty = (r.height - this.H * this.zoom) / 2;
      this.applyTransform();
    }
    zoomAt(f, cx, cy) {
      var r = this.vp.getBoundingClientRect();
      if (cx == null) { cx = r.width / 2; cy = r.height / 2; }
      var z = Math.max(0.05, Math.min(40, this.zoom * f));
      this.tx = cx - (cx - this.tx) * (z / this.zoom);
      this.ty = cy - (cy - this.ty) * (z / this.zoom);
      this.zoom = z;
      this.applyTransform();
    }
    applyTransform() {
      this.world.style.transform = "translate(" + this.tx + "px," + this.ty + "px) scale(" + this.zoom + ")";
      this.setStatus();
    }
    toImage(e) {
      var r = this.vp.getBoundingClientRect();
      return [(e.clientX - r.left - this.tx) / this.zoom, (e.clientY - r.top - this.ty) / this.zoom];
    }

    // painting into the class map (hard edges: no anti-aliasing, one label per pixel)
    snapshot() {
      this.undoStack.push(this.map.slice());
      var budget = Math.max(5, Math.floor(150e6 / Math.max(1, this.map.length)));
      while (this.undoStack.length > budget) this.undoStack.shift();
      this.redoStack = [];
    }
    stamp(cx, cy, value) {
      var r = this.brush / 2, W = this.W, H = this.H;
      var x0 = Math.max(0, Math.floor(cx - r)), x1 = Math.min(W - 1, Math.ceil(cx + r));
      var y0 = Math.max(0, Math.floor(cy - r)), y1 = Math.min(H - 1, Math.ceil(cy + r));
      var r2 = r * r;
      for (var y = y0; y <= y1; y++) {
        var dy = y + 0.5 - cy;
        for (var x = x0; x <= x1; x++) {
          var dx = x + 0.5 - cx;
          if (dx * dx + dy * dy <= r2 || (r < 1 && x === Math.floor(cx) && y === Math.floor(cy))) this.map[y * W + x] = value;
        }
      }
      this.dirty(x0, y0, x1, y1);
    }
    line(a, b, value) {
      var d = Math.hypot(b[0] - a[0], b[1] - a[1]);
      var steps = Math.max(1, Math.ceil(d / Math.max(0.5, this.brush / 4)));
      for (var i = 1; i <= steps; i++) {
        this.stamp(a[0] + (b[0] - a[0]) * i / steps, a[1] + (b[1] - a[1]) * i / steps, value);
      }
    }
    fillPolygon(pts, value) {
      var W = this.W, H = this.H;
      var ys = pts.map(function (p) { return p[1]; });
      var y0 = Math.max(0, Math.floor(Math.min.apply(null, ys))), y1 = Math.min(H - 1, Math.ceil(Math.max.apply(null, ys)));
      var minx = W, maxx = 0;
      for (var y = y0; y <= y1; y++) {
        var sy = y + 0.5, xs = [];
        for (var i = 0, j = pts.length - 1; i < pts.length; j = i++) {
          var a = pts[i], b = pts[j];
          if ((a[1] > sy) !== (b[1] > sy)) xs.push(a[0] + (sy - a[1]) * (b[0] - a[0]) / (b[1] - a[1]));
        }
        xs.sort(function (p, q) { return p - q; });
        for (var k = 0; k + 1 < xs.length; k += 2) {
          var xa = Math.max(0, Math.ceil(xs[k] - 0.5)), xb = Math.min(W - 1, Math.floor(xs[k + 1] - 0.5));
          for (var x = xa; x <= xb; x++) this.map[y * W + x] = value;
          if (xa < minx) minx = xa;
          if (xb > maxx) maxx = xb;
        }
      }
      if (maxx >= minx) this.dirty(minx, y0, maxx, y1);
    }
    dirty(x0, y0, x1, y1) {
      if (!this._dirty) {
        this._dirty = [x0, y0, x1, y1];
        requestAnimationFrame(() => {
          var d = this._dirty; this._dirty = null;
          this.redraw(d[0], d[1], d[2] - d[0] + 1, d[3] - d[1] + 1);
        });
      } else {
        var d = this._dirty;
        d[0] = Math.min(d[0], x0); d[1] = Math.min(d[1], y0); d[2] = Math.max(d[2], x1); d[3] = Math.max(d[3], y1);
      }
    }
    redraw(x, y, w, h) {
      var W = this.W, data = this.imageData.data, labels = this.labels;
      for (var yy = y; yy < y + h; yy++) {
        for (var xx = x; xx < x + w; xx++) {
          var i = yy * W + xx, v = this.map[i], o = i * 4;
          if (v) { var c = labels[v - 1].rgb; data[o] = c[0]; data[o + 1] = c[1]; data[o + 2] = c[2]; data[o + 3] = 255; }
          else { data[o] = 0; data[o + 1] = 0; data[o + 2] = 0; data[o + 3] = 0; }
        }
      }
      this.ctx.putImageData(this.imageData, 0, 0, x, y, w, h);
    }
    undo() {
      if (!this.undoStack.length) return;
      this.redoStack.push(this.map);
      this.map = this.undoStack.pop();
      this.modified = true;
      this.redraw(0, 0, this.W, this.H);
    }
    redo() {
      if (!this.redoStack.length) return;
      this.undoStack.push(this.map);
      this.map = this.redoStack.pop();
      this.modified = true;
      this.redraw(0, 0, this.W, this.H);
    }
    drawPoly(hover) {
      var svg = this.svg;
      while (svg.firstChild) svg.removeChild(svg.firstChild);
      if (!this.poly.length) return;
      var pts = this.poly.concat(hover ? [hover] : []);
      var lb = this.labels[this.current - 1];
      var pl = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
      pl.setAttribute("points", pts.map(function (p) { return p[0] + "," + p[1]; }).join(" "));
      pl.setAttribute("fill", lb ? lb.color : "#000");
      pl.setAttribute("fill-opacity", "0.3");
      pl.setAttribute("stroke", lb ? lb.color : "#000");
      pl.setAttribute("stroke-width", String(2 / this.zoom));
      svg.appendChild(pl);
      var first = this.poly[0];
      var c = document.createElementNS("http://www.w3.org/2000/svg", "circle");
      c.setAttribute("cx", first[0]); c.setAttribute("cy", first[1]); c.setAttribute("r", String(5 / this.zoom));
      c.setAttribute("fill", "#fff"); c.setAttribute("stroke", "#000"); c.setAttribute("stroke-width", String(1.5 / this.zoom));
      svg.appendChild(c);
    }
    closePolygon() {
      if (this.poly.length >= 3) {
        this.snapshot();
        this.fillPolygon(this.poly, this.current);
        this.modified = true;
      }
      this.poly = []; this.drawPoly();
    }
    bindPointer() {
      var self = this, vp = this.vp, drawing = null, panning = null;
      vp.addEventListener("contextmenu", function (e) { e.preventDefault(); });
      vp.addEventListener("pointerdown", function (e) {
        if (!self.W) return;
        vp.setPointerCapture(e.pointerId);
        if (self.tool === "pan" || e.button === 1 || e.button === 2 || self.spaceDown) {
          panning = [e.clientX, e.clientY, self.tx, self.ty];
          return;
        }
        if (e.button !== 0 || !self.labels.length) return;
        var p = self.toImage(e);
        if (self.tool === "polygon") {
          var f = self.poly[0];
          if (f && self.poly.length >= 3 && Math.hypot(p[0] - f[0], p[1] - f[1]) * self.zoom < 8) self.closePolygon();
          else { self.poly.push(p); self.drawPoly(); }
          return;
        }
        self.snapshot();
        var v = self.tool === "eraser" ? 0 : self.current;
        drawing = { last: p, value: v };
        self.stamp(p[0], p[1], v);
        self.modified = true;
      });
      vp.addEventListener("pointermove", function (e) {
        var r = vp.getBoundingClientRect(), size = self.brush * self.zoom;
        self.cursorEl.style.width = self.cursorEl.style.height = size + "px";
        self.cursorEl.style.left = (e.clientX - r.left - size / 2) + "px";
        self.cursorEl.style.top = (e.clientY - r.top - size / 2) + "px";
        if (panning) {
          self.tx = panning[2] + e.clientX - panning[0]; self.ty = panning[3] + e.clientY - panning[1];
          self.applyTransform();
          return;
        }
        var p = self.toImage(e);
        if (drawing) { self.line(drawing.last, p, drawing.value); drawing.last = p; }
        else if (self.tool === "polygon" && self.poly.length) self.drawPoly(p);
      });
      var end = function () { drawing = null; panning = null; };
      vp.addEventListener("pointerup", end);
      vp.addEventListener("pointercancel", end);
      vp.addEventListener("dblclick", function () { if (self.tool === "polygon") self.closePolygon(); });
      vp.addEventListener("wheel", function (e) {
        e.preventDefault();
        var r = vp.getBoundingClientRect();
        self.zoomAt(e.deltaY < 0 ? 1.15 : 1 / 1.15, e.clientX - r.left, e.clientY - r.top);
      }, { passive: false });
    }
    bindKeys() {
      var self = this;
      document.addEventListener("keydown", function (e) {
        var t = e.target, tag = t && t.tagName ? t.tagName.toLowerCase() : "";
        if (tag === "input" && t.type !== "range" || tag === "textarea" || (t && t.isContentEditable)) return;
        var k = e.key;
        if ((e.ctrlKey || e.metaKey) && (k === "z" || k === "Z")) { e.preventDefault(); if (e.shiftKey) self.redo(); else self.undo(); return; }
        if ((e.ctrlKey || e.metaKey) && (k === "y" || k === "Y")) { e.preventDefault(); self.redo(); return; }
        if (e.ctrlKey || e.metaKey || e.altKey) return;
        if (/^[1-9]$/.test(k)) self.pickLabel(Number(k));
        else if (k === "b" || k === "B") self.pickTool("brush");
        else if (k === "p" || k === "P") self.pickTool("polygon");
        else if (k === "e" || k === "E") self.pickTool("eraser");
        else if (k === "h" || k === "H") self.pickTool("pan");
        else if (k === "f" || k === "F") self.fit();
        else if (k === "+" || k === "=") self.zoomAt(1.25);
        else if (k === "-" || k === "_") self.zoomAt(0.8);
        else if (k === "[" || k === "]") {
          self.brush = Math.max(1, Math.min(100, self.brush + (k === "]" ? 2 : -2)));
          self.sizeInput.value = String(self.brush); self.sizeOut.textContent = self.brush + " px";
        } else if (k === "Enter" && self.tool === "polygon") self.closePolygon();
        else if (k === "Escape" && self.poly.length) { self.poly = []; self.drawPoly(); }
        else if (k === " ") self.spaceDown = true;
        else return;
        e.preventDefault();
      });
      document.addEventListener("keyup", function (e) { if (e.key === " ") self.spaceDown = false; });
    }

    /** GT's answer: inputImageProperties, labelMappings, labeledImage.pngImageData (+ initialValueModified). */
    answer() {
      if (!this.W) return undefined;
      var c = document.createElement("canvas");
      c.width = this.W; c.height = this.H;
      var x = c.getContext("2d");
      var d = x.createImageData(this.W, this.H), data = d.data, labels = this.labels;
      for (var i = 0, n = this.map.length; i < n; i++) {
        var v = this.map[i];
        if (v) { var col = labels[v - 1].rgb, o = i * 4; data[o] = col[0]; data[o + 1] = col[1]; data[o + 2] = col[2]; data[o + 3] = 255; }
      }
      x.putImageData(d, 0, 0);
      var png = c.toDataURL("image/png").replace(/^data:image\/png;base64,/, "");
      var mappings = {};
      labels.forEach(function (lb) { mappings[lb.name] = { color: lb.color }; });
      var out = {
        inputImageProperties: { height: this.H, width: this.W },
        labelMappings: mappings,
        labeledImage: { pngImageData: png }
      };
      if (this.hasInitial) out.initialValueModified = !!this.modified;
      return out;
    }
    /** The answer as page scripts read it: the reference's own example reads `crowd-keypoint`'s as `.value`. */
    get value() { return this.answer(); }
  }

  window.customElements.define("crowd-semantic-segmentation", CrowdSemanticSegmentation);
})();
