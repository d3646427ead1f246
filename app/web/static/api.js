// JSON over fetch with the session cookie. Errors carry the service's envelope message.

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status; // 0: the request never got an answer (network down, server gone)
    this.code = code;
    this.details = details;
  }

  // The message with the reasons the service gave (field problems of a 422), for people.
  explain() {
    const reasons = Array.isArray(this.details)
      ? this.details.map((d) => d.reason || d.msg).filter(Boolean) : [];
    return reasons.length ? `${this.message}: ${reasons.join("; ")}` : this.message;
  }
}

// The field a detail of the service's refusal is about: its own `field`, or a schema
// error's location past the part of the request ("body.answers.x" -> "answers.x").
export function fieldOf(detail) {
  if (detail.field) return String(detail.field);
  if (Array.isArray(detail.loc)) return detail.loc.slice(1).join(".");
  return "";
}

export async function api(method, path, body, headers = {}) {
  const init = {
    method, credentials: "same-origin", headers: { Accept: "application/json", ...headers },
  };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = typeof body === "string" ? body : JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, "network", "no connection to the service");
  }
  if (response.status === 401) {
    // The session ended (expired, logged out elsewhere, token revoked): back to the login.
    window.location.assign("/login?next=" + encodeURIComponent(window.location.pathname));
    throw new ApiError(401, "not_authenticated", "session ended");
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch (err) {
    // Not ours (a proxy's error page): keep the status, say what it was.
    data = null;
  }
  if (!response.ok) {
    const error = (data && data.error) || {};
    throw new ApiError(response.status, error.code || "error", error.message || response.statusText,
      error.details);
  }
  return data;
}
