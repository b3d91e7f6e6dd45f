/* Week grid painting for the availability editor (templates/specialist_availability.html).
 *
 * Without this script the grid is plain checkboxes posted with the form. With it, pressing a
 * mouse button on a cell and dragging ticks every cell passed over (or unticks them, when the
 * first cell was ticked), and ticked cells are shaded. Touch keeps plain taps (a drag scrolls
 * the table on a phone); a tap anywhere in a cell toggles it. No framework, no inline JS.
 */
(function () {
  "use strict";
  var table = document.getElementById("week-grid");
  if (!table || !table.addEventListener || !Element.prototype.closest) return;
  var painting = null; /* true: ticking, false: unticking, null: not dragging */
  var pressed = false; /* the coming click was already handled by pointerdown */

  function boxOf(target) {
    var cell = target && target.closest ? target.closest("td") : null;
    return cell && table.contains(cell) ? cell.querySelector("input[type=checkbox]") : null;
  }

  function shade(box) {
    box.parentNode.style.background = box.checked ? "#cfe0ff" : "";
  }

  function set(box, on) {
    box.checked = on;
    shade(box);
  }

  table.addEventListener("pointerdown", function (event) {
    if (event.pointerType === "touch" || event.button !== 0) return;
    var box = boxOf(event.target);
    if (!box) return;
    event.preventDefault(); /* no text selection while dragging */
    painting = !box.checked;
    pressed = true;
    set(box, painting);
  });

  table.addEventListener("pointerover", function (event) {
    if (painting === null) return;
    var box = boxOf(event.target);
    if (box) set(box, painting);
  });

  document.addEventListener("pointerup", function () {
    painting = null;
    setTimeout(function () { pressed = false; }, 0); /* after this press's click */
  });

  table.addEventListener("click", function (event) {
    var box = boxOf(event.target);
    if (!box) return;
    if (pressed) {
      /* pointerdown already toggled it: undo the checkbox's own toggle */
      if (event.target === box) event.preventDefault();
      pressed = false;
      return;
    }
    if (event.target !== box) {
      set(box, !box.checked); /* a tap beside the checkbox, inside its cell */
    }
  });

  table.addEventListener("change", function (event) {
    if (event.target.type === "checkbox") shade(event.target);
  });

  var boxes = table.querySelectorAll("input[type=checkbox]");
  for (var i = 0; i < boxes.length; i++) shade(boxes[i]);
})();
