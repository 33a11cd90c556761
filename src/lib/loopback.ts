/** Whether `host` (a URL's hostname, or a listen address without brackets) names this machine. */
const LOOPBACK_HOST = /^(localhost|127\.\d+\.\d+\.\d+|::1|\[::1\])$/;

export const isLoopbackHost = (host: string): boolean => LOOPBACK_HOST.test(host);
