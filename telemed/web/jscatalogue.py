"""The strings the pages' scripts show (``telemed/static/**/*.js``, through ``t("…")`` of
``static/i18n.js``), and each language's catalogue of them as the page carries it.

The scripts run in the reader's browser, often on a thin link and sometimes offline, so their
words come with the page that loads them: ``base.html`` writes the catalogue of the page's
language into ``<body data-i18n>`` (a JSON object, English text -> translation). An English
page carries nothing (the scripts' own text is English), and a Sesotho page only the strings
listed here (about 2 KB before gzip). No inline script (the CSP forbids them) and no request
of its own: a page the service worker kept offline still has its words.

``tests/test_i18n_pages.py`` fails when a script calls ``t("…")`` with a string not listed
here; ``pybabel extract`` finds the list (``N_``), so tests/test_i18n.py holds the Sesotho
catalogue to every one of them.
"""

from __future__ import annotations

import json
from functools import lru_cache

from markupsafe import Markup, escape

from telemed.i18n import DEFAULT_LANGUAGE, N_, translations

MESSAGES: tuple[str, ...] = (
    N_("%(name)s (you)"),
    N_("%(name)s ended the consult. You can leave the call."),
    N_("Call server: %(error)s"),
    N_("Connecting media…"),
    N_("Connecting to the test server…"),
    N_("Connection lost at %(done)s KB; retrying in %(seconds)s s…"),
    N_("Connection lost; retrying in %(seconds)s s…"),
    N_("Connection to the call server lost; reconnecting…"),
    N_("Consult request for %(patient)s (%(specialty)s)"),
    N_("Could not switch device: %(error)s"),
    N_("Discard"),
    N_("Done: your link is suited to %(mode)s."),
    N_("Download the original"),
    N_("Draft note on consult %(consult)s"),
    N_("End the consult now? It will be marked completed."),
    N_("Files: %(count)s, %(sent)s to send"),
    N_("Files: %(count)s, %(taken)s taken, %(sent)s to send"),
    N_("In the call."),
    N_("Joining the call…"),
    N_("Log in again"),
    N_("Measuring the download…"),
    N_("Measuring the round trip…"),
    N_("Measuring the upload…"),
    N_("Message on consult %(consult)s: %(text)s"),
    N_("No camera or microphone is available: you can still chat here."),
    N_(
        "No connection: queued on this device. It will be sent when the link is back; the home "
        "page lists what is waiting."
    ),
    N_("Not sent: %(error)s"),
    N_("Queued on this device: log in again and it will be sent."),
    N_("Recorded %(length)s, %(size)s KB to send. Listen, then send or discard."),
    N_("Recording… it stops by itself at %(limit)s."),
    N_("Request sent. Photo %(number)s of %(count)s: %(done)s of %(total)s"),
    N_("Request sent. Photo %(number)s of %(count)s…"),
    N_("Saved as a draft, not signed: %(error)s"),
    N_("Sending stopped; press Send to try again."),
    N_("Sending the photo…"),
    N_("Sending the request…"),
    N_("Sending… %(done)s of %(total)s KB"),
    N_("Sending…"),
    N_("Sent."),
    N_("Signed note on consult %(consult)s"),
    N_("The call cannot be held (%(error)s)."),
    N_(
        "The call cannot be held over this link just now. Messages and photos you send below still"
        " reach the consult's thread, and replies appear here."
    ),
    N_("The call cannot be started (%(error)s)."),
    N_("The call is full."),
    N_("The call refused this page."),
    N_("The connection keeps dropping. Press Send again to continue."),
    N_("The connection keeps dropping. Press Upload again to continue from %(done)s KB."),
    N_("The file is %(size)s MB; the limit is %(limit)s."),
    N_("The media connection failed; retrying…"),
    N_("The message was not saved on the thread (no connection)."),
    N_("The message was not saved on the thread."),
    N_("The microphone could not be used: %(error)s"),
    N_("The photo was not sent: %(error)s"),
    N_("The request could not be sent: no connection. Try again."),
    N_("The request was sent; %(photos)s. Attach it on the consult page."),
    N_("The test did not run: %(error)s"),
    N_("The test server could not be reached: use messages and photos."),
    N_("The upload can no longer be continued; please start again."),
    N_("The upload stopped; press Upload to try again."),
    N_("This browser cannot run the test (no WebRTC)."),
    N_("This call was opened in another window."),
    N_("Uploaded. Reloading…"),
    N_("Uploading… %(done)s of %(total)s KB"),
    N_("Waiting for the others to join…"),
    N_("Waiting to be sent: %(count)s"),
    N_("Working out the size…"),
    N_("You left the call."),
    N_("Your session has expired."),
    N_("a patient"),
    N_("camera"),
    N_("microphone"),
    N_("not reachable"),
    N_("photos: %(count)s"),
    N_("queued %(when)s"),
    N_("queued by another user: sent when they log in"),
    N_("reconnecting…"),
    N_("to send what is waiting (%(count)s kept on this device)."),
    # Shown through t(variable): words the server sends (roles, recommendations, media modes)
    # and the call's link quality.
    N_("clinician"),
    N_("specialist"),
    N_("interpreter"),
    N_("observer"),
    N_("coordinator"),
    N_("admin"),
    N_("low-bandwidth video"),
    N_("audio only"),
    N_("messages and photos (no live call)"),
    N_("good"),
    # phone: the call's status and its fallbacks
    N_("No media connection yet; still trying…"),
    N_("The call server does not answer."),
    N_("This browser cannot hold calls."),
    N_("fair"),
    N_("poor"),
    N_("unknown"),
)


@lru_cache(maxsize=4)
def catalogue(language: str) -> Markup:
    """The scripts' strings in ``language`` that differ from the English, as the escaped JSON
    of the ``data-i18n`` attribute; empty for English. Built once per language and process."""
    if language == DEFAULT_LANGUAGE:
        return Markup("")
    words = translations(language)
    table = {m: words.gettext(m) for m in MESSAGES if words.gettext(m) != m}
    return escape(json.dumps(table, ensure_ascii=False, separators=(",", ":"), sort_keys=True))
