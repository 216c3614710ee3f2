// The admin listener's own metrics, on a registry of its own: appended to whatever /metrics serves (one
// gateway's registry, or under --workers the workers' aggregated by the primary), so they show either way.
import { Counter, Gauge, Registry } from "prom-client";

export class AdminMetrics {
  readonly registry = new Registry();
  readonly eventStreams: Gauge;
  readonly eventsDropped: Counter;

  constructor() {
    const registers = [this.registry];
    this.eventStreams = new Gauge({
      name: "portcullis_admin_event_streams",
      help: "Open GET /decisions/stream connections (the console's live decisions).",
      registers,
    });
    this.eventsDropped = new Counter({
      name: "portcullis_admin_events_dropped_total",
      help: "Decisions not sent to a /decisions/stream client that was not reading fast enough.",
      registers,
    });
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
