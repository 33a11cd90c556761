/**
 * Kong's own keys, table by table (Kong 3.x entities, plugin schemas and kong.conf), so that a
 * Kong setting this gateway does not implement is named as such instead of as an unknown key,
 * and docs/configuration.md can list each with its reason. Keys that are implemented are simply
 * accepted by their table; these lists only speak for the keys a table does not have.
 */

export const KONG_KEYS = {
  /** kong.conf: this gateway's `[server]` table. */
  server: [
    "admin_access_log", "admin_error_log", "admin_gui_listen", "admin_listen", "admin_ssl_cert", "admin_ssl_cert_key",
    "allow_debug_header", "anonymous_reports", "client_body_buffer_size", "client_max_body_size", "client_ssl",
    "client_ssl_cert", "client_ssl_cert_key", "cluster_cert", "cluster_cert_key", "cluster_control_plane", "cluster_listen",
    "cluster_mtls", "database", "db_cache_ttl", "db_update_frequency", "declarative_config", "dns_error_ttl", "dns_hostsfile",
    "dns_no_sync", "dns_not_found_ttl", "dns_order", "dns_resolver", "dns_stale_ttl", "dns_valid_ttl", "error_default_type",
    "headers", "keyring_enabled", "log_level", "lua_package_path", "lua_ssl_trusted_certificate", "lua_ssl_verify_depth",
    "mem_cache_size", "nginx_http_client_body_timeout", "nginx_http_client_header_timeout", "nginx_http_keepalive_timeout",
    "nginx_http_large_client_header_buffers", "nginx_main_worker_processes", "nginx_worker_processes", "pg_host", "plugins",
    "prefix", "proxy_access_log", "proxy_error_log", "proxy_listen", "real_ip_header", "real_ip_recursive", "role",
    "router_flavor", "ssl_cert", "ssl_cert_key", "ssl_cipher_suite", "ssl_ciphers", "ssl_protocols", "ssl_session_timeout",
    "status_listen", "stream_listen", "tracing_instrumentations", "trusted_ips", "untrusted_lua",
    "upstream_keepalive_idle_timeout", "upstream_keepalive_max_requests", "upstream_keepalive_pool_size", "vaults",
    "worker_consistency", "worker_state_update_frequency",
  ],
  "openid-connect": [
    "anonymous", "audience", "audience_claim", "audience_required", "auth_methods", "authenticated_groups_claim",
    "authorization_cookie_domain", "authorization_cookie_http_only", "authorization_cookie_name", "authorization_cookie_path",
    "authorization_cookie_same_site", "authorization_cookie_secure", "authorization_endpoint", "authorization_query_args_client",
    "authorization_query_args_names", "authorization_query_args_values", "authorization_rolling_timeout",
    "bearer_token_cookie_name", "bearer_token_param_type", "by_username_ignore_case", "cache_introspection",
    "cache_token_exchange", "cache_tokens", "cache_tokens_salt", "cache_ttl", "cache_ttl_max", "cache_ttl_min", "cache_ttl_neg",
    "cache_ttl_resurrect", "cache_user_info", "claims_forbidden", "client_alg", "client_arg", "client_auth",
    "client_credentials_param_type", "client_id", "client_jwk", "client_secret", "cluster_cache_redis", "cluster_cache_strategy",
    "consumer_by", "consumer_claims", "consumer_groups_claim", "consumer_groups_optional", "consumer_optional",
    "credential_claim", "disable_session", "discovery_headers_names", "discovery_headers_values", "display_errors", "domains",
    "downstream_access_token_header", "downstream_access_token_jwk_header", "downstream_headers", "downstream_headers_claims",
    "downstream_headers_names", "downstream_id_token_header", "downstream_id_token_jwk_header",
    "downstream_introspection_header", "downstream_introspection_jwt_header", "downstream_refresh_token_header",
    "downstream_session_id_header", "downstream_user_info_header", "downstream_user_info_jwt_header", "dpop_proof_lifetime",
    "dpop_use_nonce", "enable_hs_signatures", "end_session_endpoint", "expose_error_code", "extra_jwks_uris",
    "forbidden_destroy_session", "forbidden_error_message", "forbidden_redirect_uri", "groups_claim", "groups_required",
    "hide_credentials", "http_proxy", "http_proxy_authorization", "http_version", "https_proxy", "https_proxy_authorization",
    "id_token_param_name", "id_token_param_type", "ignore_signature", "introspect_jwt_tokens", "introspection_accept",
    "introspection_check_active", "introspection_endpoint", "introspection_endpoint_auth_method", "introspection_headers_client",
    "introspection_headers_names", "introspection_headers_values", "introspection_hint", "introspection_post_args_client",
    "introspection_post_args_client_headers", "introspection_post_args_names", "introspection_post_args_values",
    "introspection_token_param_name", "issuer", "issuers_allowed", "jwks_endpoint", "jwt_session_claim", "jwt_session_cookie",
    "keepalive", "leeway", "login_action", "login_methods", "login_redirect_mode", "login_redirect_uri", "login_tokens",
    "logout_methods", "logout_post_arg", "logout_query_arg", "logout_redirect_uri", "logout_revoke",
    "logout_revoke_access_token", "logout_revoke_refresh_token", "logout_uri_suffix", "max_age", "mtls_introspection_endpoint",
    "mtls_revocation_endpoint", "mtls_token_endpoint", "no_proxy", "password_param_type", "preserve_query_args",
    "proof_of_possession_auth_methods_validation", "proof_of_possession_dpop", "proof_of_possession_mtls",
    "pushed_authorization_request_endpoint", "pushed_authorization_request_endpoint_auth_method", "redirect_uri", "redis",
    "rediscovery_lifetime", "refresh_token_param_name", "refresh_token_param_type", "refresh_tokens",
    "require_proof_key_for_code_exchange", "require_pushed_authorization_requests", "require_signed_request_object",
    "resolve_distributed_claims", "response_mode", "response_type", "reverify", "revocation_endpoint",
    "revocation_endpoint_auth_method", "revocation_token_param_name", "roles_claim", "roles_required", "run_on_preflight",
    "scopes", "scopes_claim", "scopes_required", "search_user_info", "session_absolute_timeout", "session_audience",
    "session_bind", "session_cookie_domain", "session_cookie_http_only", "session_cookie_name", "session_cookie_path",
    "session_cookie_same_site", "session_cookie_secure", "session_enforce_same_subject", "session_hash_storage_key",
    "session_hash_subject", "session_idling_timeout", "session_memcached_host", "session_memcached_port",
    "session_memcached_prefix", "session_memcached_socket", "session_memcached_ssl", "session_memcached_ssl_verify",
    "session_remember", "session_remember_absolute_timeout", "session_remember_cookie_name", "session_remember_rolling_timeout",
    "session_request_headers", "session_response_headers", "session_rolling_timeout", "session_secret", "session_storage",
    "session_store_metadata", "ssl_verify", "timeout", "tls_client_auth_cert_id", "tls_client_auth_ssl_verify",
    "token_cache_key_include_scope", "token_endpoint", "token_endpoint_auth_method", "token_exchange", "token_exchange_endpoint",
    "token_headers_client", "token_headers_grants", "token_headers_names", "token_headers_prefix", "token_headers_replay",
    "token_headers_values", "token_post_args_client", "token_post_args_names", "token_post_args_values",
    "unauthorized_destroy_session", "unauthorized_error_message", "unauthorized_redirect_uri", "unexpected_redirect_uri",
    "upstream_access_token_header", "upstream_access_token_jwk_header", "upstream_headers", "upstream_headers_claims",
    "upstream_headers_names", "upstream_id_token_header", "upstream_id_token_jwk_header", "upstream_introspection_header",
    "upstream_introspection_jwt_header", "upstream_refresh_token_header", "upstream_session_id_header",
    "upstream_user_info_header", "upstream_user_info_jwt_header", "userinfo_accept", "userinfo_endpoint",
    "userinfo_headers_client", "userinfo_headers_names", "userinfo_headers_values", "userinfo_query_args_client",
    "userinfo_query_args_names", "userinfo_query_args_values", "using_pseudo_issuer", "verify_claims", "verify_nonce",
    "verify_parameters", "verify_signature",
  ],
  "acl": [
    "allow", "always_use_authenticated_groups", "deny", "hide_groups_header", "include_consumer_groups",
  ],
  "rate-limiting": [
    "day", "error_code", "error_message", "fault_tolerant", "header_name", "hide_client_headers", "hour", "limit_by", "minute",
    "month", "path", "policy", "redis", "second", "sync_rate", "year",
  ],
  "request-termination": [
    "body", "content_type", "echo", "message", "status_code", "trigger",
  ],
  "services": [
    "ca_certificates", "client_certificate", "connect_timeout", "enabled", "host", "name", "path", "port", "protocol",
    "read_timeout", "retries", "tags", "tls_verify", "tls_verify_depth", "url", "write_timeout",
  ],
  "routes": [
    "destinations", "expression", "headers", "hosts", "https_redirect_status_code", "methods", "name", "path_handling", "paths",
    "preserve_host", "priority", "protocols", "regex_priority", "request_buffering", "response_buffering", "service", "snis",
    "sources", "strip_path", "tags",
  ],
  "upstreams": [
    "algorithm", "client_certificate", "hash_fallback", "hash_fallback_header", "hash_fallback_query_arg",
    "hash_fallback_uri_capture", "hash_on", "hash_on_cookie", "hash_on_cookie_path", "hash_on_header", "hash_on_query_arg",
    "hash_on_uri_capture", "healthchecks", "host_header", "name", "slots", "sticky_sessions_cookie",
    "sticky_sessions_cookie_path", "tags", "use_srv_name",
  ],
  "targets": [
    "failover", "tags", "target", "upstream", "weight",
  ],
  "consumers": [
    "custom_id", "tags", "username",
  ],
  "certificates": [
    "cert", "cert_alt", "key", "key_alt", "snis", "tags",
  ],
} as const satisfies Record<string, readonly string[]>;

export type KongTable = keyof typeof KONG_KEYS;

const BROWSER = "browser sign-in and sessions: this gateway serves machine clients (client credentials, bearer, introspection, password)";
const USERINFO = "the userinfo endpoint belongs to user sessions; for machine clients the token's claims (or introspection) carry the identity";

/** Why a Kong key is not here, or what to use instead, by key or by prefix (the first match wins). */
const REASONS: readonly (readonly [RegExp, string])[] = [
  [/^(verify_signature|verify_claims|verify_parameters|ignore_signature)$/, "verification is never turned off: every token's signature and claims are checked"],
  [/^(cluster_cache_redis|cluster_cache_strategy|redis)$/, "use the gateway's `[cluster]` table (`strategy = \"redis\"`), shared by every plugin"],
  [/^(session_|login_|logout_|authorization_|jwt_session_|pushed_authorization_|require_pushed_|require_signed_request_object|require_proof_key_for_code_exchange|redirect_uri|response_mode|response_type|forbidden_redirect_uri|unauthorized_redirect_uri|unexpected_redirect_uri|forbidden_destroy_session|unauthorized_destroy_session|disable_session|max_age|verify_nonce|domains|end_session_endpoint|preserve_query_args|refresh_token|id_token_|upstream_id_token|downstream_id_token|upstream_refresh_token|downstream_refresh_token|upstream_session_id|downstream_session_id|revocation_|mtls_revocation_endpoint|login_tokens)/, BROWSER],
  [/^(userinfo_|search_user_info|cache_user_info|upstream_user_info|downstream_user_info)/, USERINFO],
  [/^downstream_/, "headers on the response to the caller are not set; the `upstream_*` headers are"],
  [/^client_jwk$/, "the gateway's own signing keys live in `[keys] jwks_file` (generated, rotated, published)"],
  [/^client_arg$/, "one client per plugin entry: configure another entry (or route) for another client"],
  [/^(http_version|keepalive)$/, "the runtime's HTTP client keeps connections alive and speaks HTTP/1.1"],
  [/^token_cache_key_include_scope$/, "the scopes are always part of the token cache key"],
  [/^(tags|created_at|updated_at|id|enabled)$/, "entities are defined by gateway.toml and named by `name`; there is no database to tag or disable them in"],
  [/^expression$/, "the expressions router is not implemented: use `paths`, `hosts`, `methods` and `headers`"],
  [/^(database|pg_|db_|declarative_config|cluster_|role|keyring_enabled|prefix|lua_|untrusted_lua|nginx_|stream_listen|mem_cache_size|worker_|plugins|router_flavor|vaults|admin_gui_listen|anonymous_reports|tracing_instrumentations)/, "Kong's runtime, database and control-plane settings have no counterpart: gateway.toml is the whole configuration"],
  [/^lua_ssl_trusted_certificate$/, "use `[server] trusted_certificates`"],
  [/^(ssl_cert|ssl_cert_key)$/, "use `[server.tls] cert` and `key`"],
  [/^(proxy_access_log|admin_access_log)$/, "use `[server] access_log` (JSON lines on stdout)"],
  [/^(proxy_error_log|admin_error_log)$/, "the log goes to stdout as JSON lines; `[server] log_level` sets its level"],
];

/** The reason for an unimplemented Kong key (a generic one when none is known). */
export function kongReason(key: string): string {
  for (const [pattern, reason] of REASONS) if (pattern.test(key)) return reason;
  return "not implemented yet";
}

/** The message for a Kong key that `table` does not have. */
export function notImplementedMessage(key: string): string {
  return `'${key}' is a Kong setting this gateway does not implement (see docs/configuration.md#kong-settings-not-implemented)`;
}
