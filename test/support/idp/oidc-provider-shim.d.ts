// Minimal typings for the parts of oidc-provider 9 (which ships none) used by the test IdP.
declare module "oidc-provider" {
  export class Provider {
    constructor(issuer: string, configuration?: any);
    issuer: string;
    callback(): (req: import("node:http").IncomingMessage, res: import("node:http").ServerResponse) => void;
    use(middleware: (ctx: any, next: () => Promise<any>) => Promise<any> | any): this;
    on(event: string, listener: (...args: any[]) => void): this;
    registerGrantType(name: string, handler: (ctx: any) => Promise<void>, params?: string[] | Set<string>, dupes?: string[] | Set<string>): void;
    [key: string]: any;
  }
  export const errors: Record<string, new (...args: any[]) => Error & { error_description?: string }>;
  export default Provider;
}
declare module "oidc-provider/lib/*";
