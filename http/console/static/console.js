// scimledger console: progressive enhancement only; every page works without it.
// - [data-copy]: a button (hidden until this script runs) that copies the value or text of the
//   element whose id it names.
// - time[datetime]: shown in the viewer's time zone; the UTC time stays in the title.
"use strict";

for (const button of document.querySelectorAll("button[data-copy]")) button.hidden = false;

document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-copy]");
  if (!button) return;
  const source = document.getElementById(button.dataset.copy);
  const text = source.value !== undefined ? source.value : source.textContent;
  navigator.clipboard.writeText(text).then(() => {
    const label = button.textContent;
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = label; }, 2000);
  });
});

const format = new Intl.DateTimeFormat(undefined, {
  year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
  timeZoneName: "short",
});
for (const time of document.querySelectorAll("time[datetime]")) {
  const moment = new Date(time.getAttribute("datetime"));
  if (!Number.isNaN(moment.getTime())) time.textContent = format.format(moment);
}

// Typing an expiry date chooses "On a date".
const expiresOn = document.getElementById("expires-on");
if (expiresOn) {
  expiresOn.addEventListener("input", () => {
    const onDate = document.querySelector('input[name="expires"][value="date"]');
    if (onDate) onDate.checked = true;
  });
}
