/* Sharing a photo in the call: a thread message "shared a photo", the photo uploaded with
 * the shared resumable uploader and attached to that message, then a note over the data
 * channel so that the others show it at once (the thread feed brings it otherwise).
 * The uploader loads with the first photo: most calls share none, and the call page is the
 * heaviest a phone opens on 2G (issue 12's 60 KB first load).
 */
import { t } from "../i18n.js";

const MAX_FAILURES = 9; /* drops in a row before the page says so (about 4 minutes) */

/* ctx: {consultId, csrf, api, request, chat, broadcast(msg), status(text)} */
export function photoSharing(ctx) {
  return async function share(file) {
    const info = { filename: file.name, length: file.size, media_type: file.type || "application/octet-stream" };
    ctx.status(t("Sending the photo…"));
    try {
      const { reason, upload } = await import("../uploader.js");
      const res = await ctx.request("POST", ctx.api + "/call/photos", { "Content-Type": "application/json" }, JSON.stringify(info));
      if (res.status !== 201) throw new Error(reason(res));
      const messageId = res.json.message_id;
      ctx.chat.photoMessages[messageId] = true;
      const attachment = await upload(file, {
        consultId: ctx.consultId, csrf: ctx.csrf, fields: { message_id: messageId }, maxFailures: MAX_FAILURES,
        onProgress: (done, total) => ctx.status(t("Sending the photo…") + " " + Math.round(100 * done / total) + "%")
      });
      ctx.chat.seenAttachments[attachment.id] = true;
      ctx.chat.showPhoto(ctx.chat.me.name, attachment.id, attachment.filename);
      ctx.broadcast({ type: "photo", name: ctx.chat.me.name, attachment: attachment.id, filename: attachment.filename,
                      message: messageId });
      ctx.status("");
    } catch (err) {
      ctx.status(t("The photo was not sent: %(error)s", { error: err.message }));
    }
  };
}
