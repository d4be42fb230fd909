// Page glue for the operator screens: toasts, bulk selection, drawer, field ordering.
// Everything else is server-rendered HTML swapped by htmx.
(function () {
  "use strict";

  function dismissLater(toast) {
    if (toast.dataset.timer) return;
    toast.dataset.timer = "1";
    setTimeout(function () { toast.remove(); }, 6000);
  }

  function armToasts() {
    document.querySelectorAll("#toasts .toast").forEach(dismissLater);
  }

  function updateSelection() {
    var boxes = document.querySelectorAll(".row-check");
    var checked = document.querySelectorAll(".row-check:checked").length;
    var label = document.getElementById("selected-count");
    var matching = document.getElementById("all-matching");
    var wholeFilter = matching && matching.value === "1" && checked === boxes.length;
    if (matching && !wholeFilter) matching.value = "";
    if (label) {
      var count = document.getElementById("select-matching");
      label.textContent = wholeFilter
        ? "All " + count.dataset.count + " matching selected"
        : checked + " selected";
    }
    var all = document.getElementById("select-all");
    if (all) {
      all.checked = boxes.length > 0 && checked === boxes.length;
      all.indeterminate = checked > 0 && checked < boxes.length;
    }
  }

  function moveField(button) {
    var item = button.closest("li");
    if (!item) return;
    if (button.dataset.move === "up" && item.previousElementSibling) {
      item.parentNode.insertBefore(item, item.previousElementSibling);
    } else if (button.dataset.move === "down" && item.nextElementSibling) {
      item.parentNode.insertBefore(item.nextElementSibling, item);
    }
    button.focus();
    // The preview listens for "change" on the form.
    item.dispatchEvent(new Event("change", { bubbles: true }));
  }

  document.addEventListener("click", function (event) {
    var target = event.target;
    if (target.closest("[data-move]")) {
      event.preventDefault();
      moveField(target.closest("[data-move]"));
    } else if (target.closest("#select-matching")) {
      // Every record the filter matches, on every page: the server picks them at submit.
      document.querySelectorAll(".row-check").forEach(function (box) { box.checked = true; });
      document.getElementById("all-matching").value = "1";
      updateSelection();
    } else if (target.closest("[data-close-drawer]")) {
      var drawer = document.getElementById("drawer");
      if (drawer) drawer.innerHTML = "";
    }
  });

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.id === "select-all") {
      document.querySelectorAll(".row-check").forEach(function (box) {
        box.checked = target.checked;
      });
    }
    if (target.id === "select-all" || target.classList.contains("row-check")) {
      updateSelection();
    }
  });

  // A button with data-confirm asks first; in the capture phase, so neither htmx nor the
  // browser sends the form when the answer is no.
  document.addEventListener("submit", function (event) {
    var button = event.submitter;
    if (button && button.dataset.confirm && !window.confirm(button.dataset.confirm)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  document.addEventListener("keydown", function (event) {
    var drawer = document.getElementById("drawer");
    if (event.key === "Escape" && drawer) drawer.innerHTML = "";
  });

  document.addEventListener("htmx:afterSettle", function () {
    armToasts();
    updateSelection();
  });
  document.addEventListener("DOMContentLoaded", function () {
    armToasts();
    updateSelection();
  });
})();
