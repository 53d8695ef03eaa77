// The errors a reconcile may throw to say more than "try again".

/** An error with a reason for the object's Ready condition. */
abstract class ReasonedError extends Error {
  /** CamelCase, as a condition reason. */
  readonly reason: string;
  constructor(reason: string, message: string) {
    super(message);
    this.reason = reason;
  }
}

/**
 * A failure that retrying cannot mend, such as a spec that will never work (controller-runtime's
 * TerminalError): it is reported and not retried with backoff; the next event about the object (a
 * change to it or its children, or a source naming it) reconciles it again.
 */
export class TerminalError extends ReasonedError {
  override name = 'TerminalError';
}

/**
 * A failure to report in status (Ready=False with its reason and message) and to retry with backoff:
 * what caused it may be mended by someone else (a policy or quota that refused a child).
 */
export class ReportedError extends ReasonedError {
  override name = 'ReportedError';
}
