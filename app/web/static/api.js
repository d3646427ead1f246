// JSON over fetch with the session cookie. Errors carry the service's envelope message.

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
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

export async function api(method, path, body) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (response.status === 401) {
    // The session ended (expired, logged out elsewhere, token revoked): back to the login.
    window.location.assign("/login?next=" + encodeURIComponent(window.location.pathname));
    throw new ApiError(401, "not_authenticated", "session ended");
  }
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) {
    const error = (data && data.error) || {};
    throw new ApiError(response.status, error.code || "error", error.message || response.statusText,
      error.details);
  }
  return data;
}
