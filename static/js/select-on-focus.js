// Selects the whole value of a read-only field marked data-select-on-focus when it gets focus (a new
// API token, ready to copy).
"use strict";

document.querySelectorAll("[data-select-on-focus]").forEach(function (field) {
  field.addEventListener("focus", function () { field.select(); });
});
