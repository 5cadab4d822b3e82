// Sign-in by the OAuth 2.0 authorization code flow with PKCE (RFC 7636), against Cognito's
// managed login in AWS and against the local sign-in stand-in in the demo: the same code.
// The ID token is kept in sessionStorage (this tab only, gone when it closes).

const TOKEN_KEY = "worklist.id_token";
const VERIFIER_KEY = "worklist.pkce_verifier";
const STATE_KEY = "worklist.oauth_state";

function base64url(bytes) {
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomString(bytes = 32) {
  return base64url(crypto.getRandomValues(new Uint8Array(bytes)));
}

async function challengeOf(verifier) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function forget() {
  sessionStorage.removeItem(TOKEN_KEY);
}

export async function signIn(config) {
  const verifier = randomString();
  const state = randomString(16);
  sessionStorage.setItem(VERIFIER_KEY, verifier);
  sessionStorage.setItem(STATE_KEY, state);
  const url = new URL(config.authorizeUrl);
  url.search = new URLSearchParams({
    response_type: "code",
    client_id: config.clientId,
    redirect_uri: config.redirectUri,
    scope: config.scopes,
    state,
    code_challenge: await challengeOf(verifier),
    code_challenge_method: "S256",
  }).toString();
  window.location.assign(url.toString());
}

export function signOut(config) {
  forget();
  if (config.logoutUrl) {
    const url = new URL(config.logoutUrl);
    url.search = new URLSearchParams({
      client_id: config.clientId,
      logout_uri: config.redirectUri,
    }).toString();
    window.location.assign(url.toString());
  } else {
    window.location.assign(config.redirectUri);
  }
}

// Back from sign-in with ?code=...&state=...: exchange the code (with the verifier) for tokens.
// Returns true if a code was handled; throws if the state does not match or the exchange fails.
export async function completeSignIn(config) {
  const params = new URLSearchParams(window.location.search);
  const code = params.get("code");
  if (!code && !params.get("error")) return false;
  const expected = sessionStorage.getItem(STATE_KEY);
  const verifier = sessionStorage.getItem(VERIFIER_KEY);
  sessionStorage.removeItem(STATE_KEY);
  sessionStorage.removeItem(VERIFIER_KEY);
  window.history.replaceState(null, "", window.location.pathname);
  if (!code || !expected || params.get("state") !== expected || !verifier) {
    throw new Error("sign-in was not completed");
  }
  const response = await fetch(config.tokenUrl, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      client_id: config.clientId,
      code,
      redirect_uri: config.redirectUri,
      code_verifier: verifier,
    }),
  });
  if (!response.ok) throw new Error("sign-in was not completed");
  const tokens = await response.json();
  sessionStorage.setItem(TOKEN_KEY, tokens.id_token);
  return true;
}
