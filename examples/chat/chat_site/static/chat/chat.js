// A tiny client for the example's two bolt endpoints: /ws/echo and /ws/chat/{room}.
(function () {
  "use strict";
  const log = document.getElementById("log");
  const joinForm = document.getElementById("join");
  const sendForm = document.getElementById("send");
  let socket = null;

  function show(line, meta) {
    const row = document.createElement("div");
    if (meta) row.className = "meta";
    row.textContent = line;  // never innerHTML: messages come from other users
    log.appendChild(row);
    log.scrollTop = log.scrollHeight;
  }

  function setConnected(on) {
    for (const el of sendForm.elements) el.disabled = !on;
  }

  joinForm.addEventListener("submit", function (event) {
    event.preventDefault();
    if (socket) socket.close(1000, "switching");
    const data = new FormData(joinForm);
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const path = data.get("endpoint") === "echo"
      ? "/ws/echo"
      : "/ws/chat/" + encodeURIComponent(data.get("room")) + "?name=" + encodeURIComponent(data.get("name"));
    socket = new WebSocket(scheme + "://" + location.host + path);
    socket.onopen = function () { show("connected to " + path, true); setConnected(true); };
    socket.onmessage = function (event) {
      try {
        const message = JSON.parse(event.data);
        show(message.from + ": " + message.text);
      } catch (_) {
        show(event.data);  // the echo endpoint answers with plain text
      }
    };
    socket.onclose = function (event) {
      show("closed (" + event.code + (event.reason ? ", " + event.reason : "") + ")", true);
      setConnected(false);
    };
  });

  sendForm.addEventListener("submit", function (event) {
    event.preventDefault();
    const input = sendForm.elements.text;
    if (socket && socket.readyState === WebSocket.OPEN && input.value) {
      socket.send(input.value);
      input.value = "";
    }
  });
})();
