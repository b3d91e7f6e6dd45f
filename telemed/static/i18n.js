/* The words of the pages' scripts in the reader's language. The server writes the page's
 * catalogue into <body data-i18n> (telemed/web/jscatalogue.py: only the strings the scripts
 * use, only when the page is not in English), so nothing is fetched, an offline page from the
 * service worker's cache still has its words, and no inline script is needed under the CSP.
 *
 *   t("Sending… %(done)s of %(total)s KB", { done: 12, total: 80 })
 *
 * The English text is the key, as in gettext; a string missing from the catalogue (or a
 * script with no document, the service worker) is shown in English.
 * tests/test_i18n_pages.py checks that every t("…") here is in the server's catalogue.
 */
const source = typeof document !== "undefined" && document.body ? document.body.getAttribute("data-i18n") : null;
const table = source ? JSON.parse(source) : {};

export function t(message, values) {
  const text = table[message] || message;
  if (!values) return text;
  return text.replace(/%\((\w+)\)s/g, (whole, name) => (name in values ? String(values[name]) : whole));
}
