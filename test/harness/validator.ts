import {
  createValidatorClient,
  startLocalValidator,
  type ValidatorClient,
} from '../../model/validator-client.ts';

/**
 * A model validator of the test file's own, as a real process (workloads/validator); the file stops
 * it when it is done. Loopback is allowed: the tests serve model files from this host.
 */
export async function startTestValidator(settings: Record<string, string> = {}): Promise<{
  client: ValidatorClient;
  url: () => string | undefined;
  logs: string[];
  stop: () => Promise<void>;
}> {
  const logs: string[] = [];
  const local = await startLocalValidator({
    settings: { AURORA_VALIDATOR_ALLOW_LOOPBACK: 'true', ...settings },
    onLog: (line) => {
      logs.push(line);
      if (process.env.DEBUG_VALIDATOR) console.log(line);
    },
  });
  return {
    client: createValidatorClient(() => local.url()),
    url: () => local.url(),
    logs,
    stop: () => local.stop(),
  };
}
