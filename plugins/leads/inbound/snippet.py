"""The embeddable form: one script tag on any page renders a form that posts to Qiao.

    <div data-qiao-lead-form></div>
    <script src="https://crm.example.com/leads/forms/KEY/embed.js" async></script>

The form has name, mobile, company, e-mail and a message, plus a hidden
honeypot field; it posts with fetch (the channel's CORS allow-list must hold
the page's origin) and shows the answer in place. Pages that want their own
markup post the same fields to the endpoint themselves.
"""

from __future__ import annotations

import json

_SCRIPT = """(function () {
  var endpoint = %(endpoint)s, honeypot = %(honeypot)s;
  var fields = [["name", "姓名", "text", true], ["mobile", "手机", "tel", true],
                ["company", "公司", "text", false], ["email", "邮箱", "email", false],
                ["description", "需求", "textarea", false]];
  function render(host) {
    var form = document.createElement("form");
    fields.forEach(function (f) {
      var label = document.createElement("label");
      label.textContent = f[1];
      var input = document.createElement(f[2] === "textarea" ? "textarea" : "input");
      if (f[2] !== "textarea") input.type = f[2];
      input.name = f[0]; input.required = f[3];
      label.appendChild(input); form.appendChild(label);
    });
    var trap = document.createElement("input");
    trap.name = honeypot; trap.tabIndex = -1; trap.autocomplete = "off";
    trap.style.cssText = "position:absolute;left:-10000px";
    trap.setAttribute("aria-hidden", "true");
    form.appendChild(trap);
    var button = document.createElement("button");
    button.type = "submit"; button.textContent = "提交";
    form.appendChild(button);
    var note = document.createElement("p");
    form.appendChild(note);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      button.disabled = true;
      fetch(endpoint, {method: "POST", body: new URLSearchParams(new FormData(form)),
                       headers: {"Content-Type": "application/x-www-form-urlencoded"}})
        .then(function (r) { return r.json().then(function (b) { return [r.ok, b]; }); })
        .then(function (res) {
          note.textContent = res[0] ? "已收到，我们会尽快联系您。" : (res[1].error || "提交失败");
          if (res[0]) form.reset();
        })
        .catch(function () { note.textContent = "网络错误，请稍后再试。"; })
        .then(function () { button.disabled = false; });
    });
    host.appendChild(form);
  }
  function start() {
    document.querySelectorAll("[data-qiao-lead-form]").forEach(render);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
"""


def embed_script(endpoint: str, honeypot: str) -> str:
    return _SCRIPT % {"endpoint": json.dumps(endpoint), "honeypot": json.dumps(honeypot)}


def snippet(base_url: str, key: str) -> str:
    """The HTML to paste into a page."""
    src = f"{base_url.rstrip('/')}/leads/forms/{key}/embed.js"
    return f'<div data-qiao-lead-form></div>\n<script src="{src}" async></script>'
