// Passkeys (WebAuthn) for the register and login pages of the portal.
// Served from the portal itself (CSP script-src 'self'); no inline script, no eval.
// The server speaks WebAuthn's JSON (binary fields base64url); the browser API wants
// ArrayBuffers, so this converts both ways and posts JSON back.
"use strict";
(() => {
  const FAILED = "認証に失敗しました。 / Login failed.";
  const NOT_REGISTERED = "登録できませんでした。 / The passkey could not be registered.";
  const THROTTLED = "試行回数が多すぎます。しばらくしてからお試しください。 / Too many attempts; try later.";

  function toBytes(text) {
    const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    const padded = base64 + "=".repeat((4 - (base64.length % 4)) % 4);
    return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
  }

  function toText(buffer) {
    let binary = "";
    for (const byte of new Uint8Array(buffer)) binary += String.fromCharCode(byte);
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function show(message) {
    const box = document.getElementById("passkey_error");
    box.textContent = message;
    box.hidden = false;
  }

  async function post(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
  }

  function refusal(answer, otherwise) {
    return answer.status === 429 ? THROTTLED : otherwise;
  }

  async function register(event) {
    event.preventDefault();
    const started = await post("/api/passkey/register/options", {
      resident_code: document.getElementById("resident_code").value.trim(),
      registration_code: document.getElementById("registration_code").value.trim(),
    });
    if (!started.ok) return show(refusal(started, NOT_REGISTERED));
    const { publicKey, challenge } = await started.json();
    publicKey.challenge = toBytes(publicKey.challenge);
    publicKey.user.id = toBytes(publicKey.user.id);
    publicKey.excludeCredentials = (publicKey.excludeCredentials || []).map(
      (c) => ({ ...c, id: toBytes(c.id) }));
    let made;
    try {
      made = await navigator.credentials.create({ publicKey });
    } catch (error) {
      return show(NOT_REGISTERED);
    }
    const response = made.response;
    const finished = await post("/api/passkey/register", {
      challenge,
      credential: {
        id: made.id, rawId: toText(made.rawId), type: made.type,
        authenticatorAttachment: made.authenticatorAttachment || null,
        response: {
          clientDataJSON: toText(response.clientDataJSON),
          attestationObject: toText(response.attestationObject),
          transports: response.getTransports ? response.getTransports() : [],
        },
      },
    });
    if (!finished.ok) return show(refusal(finished, NOT_REGISTERED));
    window.location.assign("/history");
  }

  async function login(event) {
    event.preventDefault();
    const started = await fetch("/api/passkey/login/options", { credentials: "same-origin" });
    if (!started.ok) return show(refusal(started, FAILED));
    const { publicKey, challenge } = await started.json();
    publicKey.challenge = toBytes(publicKey.challenge);
    publicKey.allowCredentials = (publicKey.allowCredentials || []).map(
      (c) => ({ ...c, id: toBytes(c.id) }));
    let got;
    try {
      got = await navigator.credentials.get({ publicKey });
    } catch (error) {
      return show(FAILED);
    }
    const response = got.response;
    const finished = await post("/api/passkey/login", {
      challenge,
      credential: {
        id: got.id, rawId: toText(got.rawId), type: got.type,
        authenticatorAttachment: got.authenticatorAttachment || null,
        response: {
          clientDataJSON: toText(response.clientDataJSON),
          authenticatorData: toText(response.authenticatorData),
          signature: toText(response.signature),
          userHandle: response.userHandle ? toText(response.userHandle) : null,
        },
      },
    });
    if (!finished.ok) return show(refusal(finished, FAILED));
    window.location.assign("/history");
  }

  const form = document.getElementById("register");
  if (form) form.addEventListener("submit", register);
  const button = document.getElementById("passkey_login");
  if (button) button.addEventListener("click", login);
})();
