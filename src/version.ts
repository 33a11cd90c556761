/** Build version; `make build` passes `--define OIDC_GATEWAY_VERSION=...` when it knows better. */
import pkg from "../package.json" with { type: "json" };

export const VERSION: string = pkg.version;
