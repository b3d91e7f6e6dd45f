/* The forms marked `data-offline` (the consult request, the thread's reply, a new note):
 * with this script they are sent as JSON to the API through the offline queue, so a "send"
 * while the link is down is kept on the device and sent later with the same Idempotency-Key.
 * Without it they post as before. A refusal while online falls back to the plain form post,
 * so the server's page names the field, as without JavaScript.
 */
import * as queue from "./queue.js";
import { sendNow } from "./page.js";
import { t } from "../i18n.js";

/* The specialty as the form shows it (its option's words, in the page's language). */
function specialtyName(form, code) {
  const option = Array.from(form.querySelectorAll("select[name=specialty] option")).find((o) => o.value === code);
  return option ? option.textContent.trim() : code.replace(/_/g, " ");
}

const CASE = ["patient_ref", "age_years", "birth_year", "sex"];
const TEXT = ["specialty", "urgency", "mode", "language", "question", "history", "examination", "current_treatment"];
const CONSENT = ["consenter", "guardian_name", "guardian_relationship", "method", "witness_name"];
const SKIP = ["csrf_token", "action"];

const api = (path) => "/api/v1" + path;
const blank = (v) => (v === "" ? null : v);

/* The consult form's fields as POST /api/v1/consults takes them (telemed/consults/forms.py
   and consent/forms.py do the same for the plain post). */
function consultBody(data, action) {
  const body = { case: {}, vitals: {}, submit: action !== "draft", consent: null };
  for (const [name, value] of data) {
    if (typeof value !== "string" || SKIP.includes(name) || name.startsWith("consent_")) continue;
    if (CASE.includes(name)) body.case[name] = blank(value.trim());
    else if (TEXT.includes(name)) body[name] = value.trim();
    else body.vitals[name] = blank(value.trim());
  }
  const sharing = data.has("consent_sharing");
  const call = data.has("consent_call");
  if (sharing || call) {
    body.consent = { sharing, call };
    for (const name of CONSENT) body.consent[name] = String(data.get("consent_" + name) || "").trim();
  }
  return body;
}

function noteBody(data) {
  const body = {};
  for (const name of ["subjective", "objective", "assessment", "plan", "follow_up_instruction"]) body[name] = String(data.get(name) || "").trim();
  body.diagnoses = String(data.get("diagnoses") || "").split(",").map((c) => c.trim()).filter(Boolean);
  body.follow_up_on = blank(String(data.get("follow_up_on") || ""));
  return body;
}

/* What to queue for this form; photos are scaled now (photo.js), once. */
async function itemOf(form, kind, submitter) {
  const data = new FormData(form);
  const action = submitter ? submitter.value : "";
  const path = form.getAttribute("action");
  const consultId = (/^\/consults\/(\d+)/.exec(path) || [])[1];
  const item = { kind, queued: Date.now(), photos: [] };
  if (kind === "consult") {
    item.url = api("/consults");
    item.body = consultBody(data, action);
    item.label = t("Consult request for %(patient)s (%(specialty)s)", { patient: item.body.case.patient_ref || t("a patient"), specialty: specialtyName(form, item.body.specialty) });
    const input = form.querySelector("input[data-photos]");
    if (input && input.files.length) {
      const { prepare } = await import("../photo.js");
      const files = await prepare(input.files, form.querySelector("input[data-full-quality]"));
      item.photos = files.map((file) => ({ key: queue.newKey(), file, name: file.name }));
    }
  } else if (kind === "message") {
    item.url = api(path);
    item.consultId = consultId;
    item.body = { body: String(data.get("body") || "").trim() };
    item.label = t("Message on consult %(consult)s: %(text)s", { consult: consultId, text: item.body.body.slice(0, 60) });
  } else {
    item.url = api("/consults/" + consultId + "/notes");
    item.consultId = consultId;
    item.body = noteBody(data);
    item.sign = action === "sign";
    item.label = item.sign ? t("Signed note on consult %(consult)s", { consult: consultId }) : t("Draft note on consult %(consult)s", { consult: consultId });
  }
  return item;
}

function where(item, sent) {
  const id = (sent && sent.consultId) || item.consultId;
  if (!id) return "/";
  if (item.kind === "message") return "/consults/" + id + "?sent=" + item.key.slice(0, 8) + "#thread";
  if (item.kind === "note") return "/consults/" + id + "#notes";
  return "/consults/" + id + (sent && sent.error ? "?photo_failed=1#attachments" : "");
}

function enhance(form) {
  const kind = form.getAttribute("data-offline");
  if (kind === "note" && !/\/notes\/new$/.test(form.getAttribute("action"))) return; /* edits and amendments: plain */
  const status = document.createElement("p");
  status.className = "muted";
  status.setAttribute("data-offline-status", "");
  status.setAttribute("aria-live", "polite");
  status.hidden = true;
  form.append(status);
  const say = (text) => { status.hidden = false; status.textContent = text; };
  const buttons = () => form.querySelectorAll("button[type=submit]");

  form.addEventListener("submit", async (event) => {
    if (form.dataset.plain) return;
    event.preventDefault();
    if (!form.checkValidity()) { form.reportValidity(); return; }
    const submitter = event.submitter;
    buttons().forEach((b) => { b.disabled = true; });
    const user = await queue.getMeta("user");
    const item = Object.assign(await itemOf(form, kind, submitter), { key: queue.newKey(), user });
    await queue.put(item);
    say(t("Sending…"));
    let result = await sendNow();
    let left = (await queue.all()).find((i) => i.key === item.key);
    if (left && !left.error && result && !result.loginNeeded && !result.stopped) {
      result = await sendNow(); /* queued while another send was finishing */
      left = (await queue.all()).find((i) => i.key === item.key);
    }
    const sent = result && result.sent.find((i) => i.key === item.key);
    if (!left || (left.sent && left.error)) {
      if (left) await queue.remove(left.key);
      say(t("Sent."));
      location.assign(where(item, sent || left));
      return;
    }
    if (left.error) {
      /* Refused while online: the plain post shows why, field by field. */
      await queue.remove(left.key);
      form.dataset.plain = "1";
      buttons().forEach((b) => { b.disabled = false; });
      form.requestSubmit(submitter);
      return;
    }
    buttons().forEach((b) => { b.disabled = false; });
    form.reset();
    form.querySelectorAll("input[data-photos]").forEach((i) => i.dispatchEvent(new Event("change")));
    say(result && result.loginNeeded
      ? t("Queued on this device: log in again and it will be sent.")
      : t("No connection: queued on this device. It will be sent when the link is back; the home page lists what is waiting."));
    if ("serviceWorker" in navigator) {
      navigator.serviceWorker.ready.then((reg) => reg.sync && reg.sync.register("telemed-send")).catch(() => {});
    }
  });
}

document.querySelectorAll("form[data-offline]").forEach(enhance);
