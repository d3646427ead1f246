// A real OpenID Connect provider for the single sign-on browser test (tests/web/test_sso.py):
// the `oidc-provider` package with its development login and consent pages. Configured from
// the environment by the test; prints "ready" once listening.
import Provider from "oidc-provider";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
};

const port = Number(env("OIDC_TEST_PORT"));
const issuer = env("OIDC_TEST_ISSUER");
// { "<login>": { "name": "...", "roles": ["..."] } }: who may sign in and their claims.
const accounts = JSON.parse(env("OIDC_TEST_ACCOUNTS"));

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: env("OIDC_TEST_CLIENT_ID"),
      client_secret: env("OIDC_TEST_CLIENT_SECRET"),
      redirect_uris: [env("OIDC_TEST_REDIRECT_URI")],
      post_logout_redirect_uris: [env("OIDC_TEST_POST_LOGOUT_URI")],
      grant_types: ["authorization_code"],
      response_types: ["code"],
      token_endpoint_auth_method: "client_secret_basic",
    },
  ],
  // PKCE is required for every authorization code request (the package's default too).
  pkce: { required: () => true },
  // Roles are released with the profile, as Entra ID puts app roles in the `roles` claim.
  claims: { openid: ["sub"], profile: ["name", "preferred_username", "roles"] },
  cookies: { keys: ["test-only-cookie-signing-key"] },
  features: { devInteractions: { enabled: true }, rpInitiatedLogout: { enabled: true } },
  async findAccount(ctx, id) {
    const account = accounts[id];
    if (!account) return undefined;
    return {
      accountId: id,
      async claims() {
        return { sub: id, preferred_username: id, ...account };
      },
    };
  },
});

provider.listen(port, "127.0.0.1", () => {
  console.log("ready");
});
