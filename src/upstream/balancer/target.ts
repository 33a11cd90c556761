/** One `host:port` of an upstream, with what the balancer and the health checker keep about it. */
export class Target {
  readonly name: string;
  /** In flight now (least-connections, latency). */
  active = 0;
  /** Moving average of response times in ms (latency); 0 until the first answer. */
  latency = 0;
  /** False once health checks marked it unhealthy. */
  healthy = true;
  /** Smooth weighted round-robin state. */
  current = 0;
  constructor(
    readonly host: string,
    readonly port: number,
    readonly weight: number,
  ) {
    this.name = host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
  }

  /** In the balancer: weight above 0 and not marked unhealthy. */
  get usable(): boolean {
    return this.weight > 0 && this.healthy;
  }

  /** Host as a URL authority writes it (IPv6 in brackets). */
  get authority(): string {
    return this.name;
  }
}
