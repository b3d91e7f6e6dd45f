// The time-zone picker (_fields.html zone_picker): an empty one gets the browser's own
// zone, when it is one of the listed canonical zones, so most people just confirm it.
// Without this script the field is a plain text box with the same list of choices.
for (const input of document.querySelectorAll("input[data-zone-picker]")) {
  if (input.value) continue;
  let zone = "";
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  } catch {
    zone = "";
  }
  const choices = input.list ? Array.from(input.list.options, (option) => option.value) : [];
  if (zone && choices.includes(zone)) input.value = zone;
}
