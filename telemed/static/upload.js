/* Resumable uploads for the attachments form (templates/_attachments.html).
 *
 * Without this script the form posts the whole file in one request. With it, the file goes
 * in 256 KB chunks through the tus-like API (/api/v1/consults/{id}/uploads, then PATCH at
 * offsets); after a drop it asks the server for its offset (HEAD) and carries on, retrying
 * with backoff. The upload's URL is remembered (localStorage), so choosing the same file
 * again after a reload resumes instead of starting from zero. No framework, no inline JS.
 */
(function () {
  "use strict";
  var CHUNK = 256 * 1024;
  var CHUNK_TIMEOUT_MS = 120000; /* 256 KB at 2G speeds can take a minute */
  var MAX_ATTEMPTS = 25; /* consecutive failures before pausing (about 10 minutes) */
  var form = document.querySelector("form[data-upload]");
  if (!form || !window.XMLHttpRequest || !window.Blob || !Blob.prototype.slice) return;
  var input = form.querySelector("input[type=file]");
  var button = form.querySelector("button[type=submit]");
  var status = form.querySelector(".upload-status");
  var bar = form.querySelector("progress");
  var csrf = form.querySelector("input[name=csrf_token]").value;
  var consultId = form.getAttribute("data-consult");
  var maxBytes = parseInt(form.getAttribute("data-max-bytes"), 10);

  function show(text, isError) {
    status.hidden = false;
    status.textContent = text;
    status.className = "upload-status " + (isError ? "error" : "muted");
  }

  function progress(done, total) {
    bar.hidden = false;
    bar.value = total ? Math.floor((done / total) * 100) : 0;
    show("Uploading… " + kb(done) + " of " + kb(total) + " KB");
  }

  function kb(n) { return Math.round(n / 1024); }

  /* One HTTP request; resolves with {status, header(), json} or rejects on a network error. */
  function request(method, url, headers, body, onProgress) {
    return new Promise(function (resolve, reject) {
      var xhr = new XMLHttpRequest();
      xhr.open(method, url);
      xhr.timeout = CHUNK_TIMEOUT_MS;
      Object.keys(headers).forEach(function (k) { xhr.setRequestHeader(k, headers[k]); });
      if (onProgress && xhr.upload) {
        xhr.upload.onprogress = function (e) { onProgress(e.loaded); };
      }
      xhr.onload = function () {
        var json = null;
        try { json = JSON.parse(xhr.responseText); } catch (e) { json = null; }
        resolve({ status: xhr.status, header: function (h) { return xhr.getResponseHeader(h); }, json: json });
      };
      xhr.onerror = xhr.ontimeout = xhr.onabort = function () { reject(new Error("network")); };
      xhr.send(body === undefined ? null : body);
    });
  }

  /* Wait, but wake up early when the browser says the network is back. */
  function pause(ms) {
    return new Promise(function (resolve) {
      var timer = setTimeout(done, ms);
      function done() { clearTimeout(timer); window.removeEventListener("online", done); resolve(); }
      window.addEventListener("online", done);
    });
  }

  function errorText(res) {
    return (res.json && res.json.error && res.json.error.message) || ("the server answered " + res.status);
  }

  function Fatal(message) { this.message = message; }

  function storageKey(file) {
    return "telemed-upload:" + consultId + ":" + file.name + ":" + file.size + ":" + file.lastModified;
  }

  function remember(key, url) { try { localStorage.setItem(key, url); } catch (e) { /* private mode */ } }
  function forget(key) { try { localStorage.removeItem(key); } catch (e) { /* private mode */ } }
  function recall(key) { try { return localStorage.getItem(key); } catch (e) { return null; } }

  /* Where the server is with an upload we know: {offset} to continue, {attachment} if it
   * finished (our last answer was lost), {failure} if it was refused, null if it is gone. */
  function serverState(url) {
    return request("HEAD", url, {}).then(function (res) {
      if (res.status >= 500 || res.status === 0) throw new Error("server");
      if (res.status !== 200) return null;
      if (res.header("Upload-State") === "open") return { offset: parseInt(res.header("Upload-Offset"), 10) };
      return request("GET", url, {}).then(function (got) {
        if (got.status !== 200) return null;
        if (got.json.attachment) return { attachment: got.json.attachment };
        return got.json.failure ? { failure: got.json.failure } : null;
      });
    });
  }

  /* Continue from what the server says, or finish with its verdict. */
  function resume(file, key, url, state, failures) {
    if (state === null) { forget(key); throw new Fatal("The upload can no longer be continued; please start again."); }
    if (state.failure) { forget(key); throw new Fatal(state.failure); }
    if (state.attachment) { forget(key); return state.attachment; }
    return send(file, key, url, state.offset, failures);
  }

  function create(file) {
    var body = JSON.stringify({ filename: file.name, length: file.size, media_type: file.type || "application/octet-stream" });
    return request("POST", "/api/v1/consults/" + consultId + "/uploads",
      { "Content-Type": "application/json", "X-CSRF-Token": csrf }, body).then(function (res) {
      if (res.status === 201) return res.json.url;
      if (res.status >= 400 && res.status < 500) throw new Fatal(errorText(res));
      throw new Error("server");
    });
  }

  function start(file) {
    var key = storageKey(file);
    var known = recall(key);
    var found = known ? serverState(known).catch(function () { return null; }) : Promise.resolve(null);
    return found.then(function (state) {
      if (state && state.offset !== undefined) return send(file, key, known, state.offset, 0);
      if (state && state.attachment) { forget(key); return state.attachment; }
      return create(file).then(function (url) { remember(key, url); return send(file, key, url, 0, 0); });
    });
  }

  function send(file, key, url, offset, failures) {
    progress(offset, file.size);
    var end = Math.min(offset + CHUNK, file.size);
    var headers = { "Content-Type": "application/offset+octet-stream", "Upload-Offset": String(offset), "X-CSRF-Token": csrf };
    return request("PATCH", url, headers, file.slice(offset, end), function (loaded) {
      progress(offset + loaded, file.size);
    }).then(function (res) {
      if (res.status === 200) {
        if (res.json.state === "complete") { forget(key); return res.json.attachment; }
        return send(file, key, url, res.json.offset, 0);
      }
      if (res.status === 409) { /* not where we thought: ask where the server is */
        return serverState(url).then(function (state) { return resume(file, key, url, state, failures); });
      }
      if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) {
        forget(key);
        throw new Fatal(errorText(res));
      }
      throw new Error("server");
    }).catch(function (err) {
      if (err instanceof Fatal) throw err;
      return retry(file, key, url, offset, failures + 1);
    });
  }

  /* After a drop: back off, ask the server where it is, carry on from there. */
  function retry(file, key, url, offset, failures) {
    if (failures >= MAX_ATTEMPTS) {
      throw new Fatal("The connection keeps dropping. Press Upload again to continue from " + kb(offset) + " KB.");
    }
    var wait = Math.min(30000, 1000 * Math.pow(2, failures - 1)) * (0.75 + Math.random() / 2);
    show("Connection lost at " + kb(offset) + " KB; retrying in " + Math.round(wait / 1000) + " s…");
    return pause(wait).then(function () { return serverState(url); }).then(function (state) {
      return resume(file, key, url, state, failures);
    }, function () { return retry(file, key, url, offset, failures + 1); });
  }

  form.addEventListener("submit", function (event) {
    var file = input.files && input.files[0];
    if (!file) return; /* the browser's "required" message */
    event.preventDefault();
    if (file.size > maxBytes) {
      show("The file is " + (file.size / 1048576).toFixed(1) + " MB; the limit is " + form.getAttribute("data-max-size") + ".", true);
      return;
    }
    button.disabled = true;
    start(file).then(function (attachment) {
      bar.value = 100;
      show("Uploaded. Reloading…");
      window.location.assign("/consults/" + consultId + "?attached=" + attachment.id + "#attachment-" + attachment.id);
    }, function (err) {
      button.disabled = false;
      show(err instanceof Fatal ? err.message : "The upload stopped; press Upload to try again.", true);
    });
  });
})();
