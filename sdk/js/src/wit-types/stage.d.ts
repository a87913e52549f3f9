/// <reference path="./interfaces/sluice-stage-cancel.d.ts" />
/// <reference path="./interfaces/sluice-stage-exec.d.ts" />
/// <reference path="./interfaces/sluice-stage-log.d.ts" />
/// <reference path="./interfaces/sluice-stage-plugin.d.ts" />
/// <reference path="./interfaces/sluice-stage-secrets.d.ts" />
/// <reference path="./interfaces/sluice-stage-types.d.ts" />
/// <reference path="./interfaces/wasi-cli-environment.d.ts" />
/// <reference path="./interfaces/wasi-cli-exit.d.ts" />
/// <reference path="./interfaces/wasi-cli-stderr.d.ts" />
/// <reference path="./interfaces/wasi-cli-stdin.d.ts" />
/// <reference path="./interfaces/wasi-cli-stdout.d.ts" />
/// <reference path="./interfaces/wasi-cli-terminal-input.d.ts" />
/// <reference path="./interfaces/wasi-cli-terminal-output.d.ts" />
/// <reference path="./interfaces/wasi-cli-terminal-stderr.d.ts" />
/// <reference path="./interfaces/wasi-cli-terminal-stdin.d.ts" />
/// <reference path="./interfaces/wasi-cli-terminal-stdout.d.ts" />
/// <reference path="./interfaces/wasi-clocks-monotonic-clock.d.ts" />
/// <reference path="./interfaces/wasi-clocks-wall-clock.d.ts" />
/// <reference path="./interfaces/wasi-filesystem-preopens.d.ts" />
/// <reference path="./interfaces/wasi-filesystem-types.d.ts" />
/// <reference path="./interfaces/wasi-http-outgoing-handler.d.ts" />
/// <reference path="./interfaces/wasi-http-types.d.ts" />
/// <reference path="./interfaces/wasi-io-error.d.ts" />
/// <reference path="./interfaces/wasi-io-poll.d.ts" />
/// <reference path="./interfaces/wasi-io-streams.d.ts" />
/// <reference path="./interfaces/wasi-random-insecure-seed.d.ts" />
/// <reference path="./interfaces/wasi-random-insecure.d.ts" />
/// <reference path="./interfaces/wasi-random-random.d.ts" />
/// <reference path="./interfaces/wasi-sockets-instance-network.d.ts" />
/// <reference path="./interfaces/wasi-sockets-ip-name-lookup.d.ts" />
/// <reference path="./interfaces/wasi-sockets-network.d.ts" />
/// <reference path="./interfaces/wasi-sockets-tcp-create-socket.d.ts" />
/// <reference path="./interfaces/wasi-sockets-tcp.d.ts" />
/// <reference path="./interfaces/wasi-sockets-udp-create-socket.d.ts" />
/// <reference path="./interfaces/wasi-sockets-udp.d.ts" />
declare module 'sluice:stage/stage@0.2.0' {
  export type * as SluiceStageCancel020 from 'sluice:stage/cancel@0.2.0'; // import sluice:stage/cancel@0.2.0
  export type * as SluiceStageExec020 from 'sluice:stage/exec@0.2.0'; // import sluice:stage/exec@0.2.0
  export type * as SluiceStageLog020 from 'sluice:stage/log@0.2.0'; // import sluice:stage/log@0.2.0
  export type * as SluiceStageSecrets020 from 'sluice:stage/secrets@0.2.0'; // import sluice:stage/secrets@0.2.0
  export type * as SluiceStageTypes020 from 'sluice:stage/types@0.2.0'; // import sluice:stage/types@0.2.0
  export type * as WasiCliEnvironment0212 from 'wasi:cli/environment@0.2.12'; // import wasi:cli/environment@0.2.12
  export type * as WasiCliExit0212 from 'wasi:cli/exit@0.2.12'; // import wasi:cli/exit@0.2.12
  export type * as WasiCliStderr0212 from 'wasi:cli/stderr@0.2.12'; // import wasi:cli/stderr@0.2.12
  export type * as WasiCliStdin0212 from 'wasi:cli/stdin@0.2.12'; // import wasi:cli/stdin@0.2.12
  export type * as WasiCliStdout0212 from 'wasi:cli/stdout@0.2.12'; // import wasi:cli/stdout@0.2.12
  export type * as WasiCliTerminalInput0212 from 'wasi:cli/terminal-input@0.2.12'; // import wasi:cli/terminal-input@0.2.12
  export type * as WasiCliTerminalOutput0212 from 'wasi:cli/terminal-output@0.2.12'; // import wasi:cli/terminal-output@0.2.12
  export type * as WasiCliTerminalStderr0212 from 'wasi:cli/terminal-stderr@0.2.12'; // import wasi:cli/terminal-stderr@0.2.12
  export type * as WasiCliTerminalStdin0212 from 'wasi:cli/terminal-stdin@0.2.12'; // import wasi:cli/terminal-stdin@0.2.12
  export type * as WasiCliTerminalStdout0212 from 'wasi:cli/terminal-stdout@0.2.12'; // import wasi:cli/terminal-stdout@0.2.12
  export type * as WasiClocksMonotonicClock0212 from 'wasi:clocks/monotonic-clock@0.2.12'; // import wasi:clocks/monotonic-clock@0.2.12
  export type * as WasiClocksWallClock0212 from 'wasi:clocks/wall-clock@0.2.12'; // import wasi:clocks/wall-clock@0.2.12
  export type * as WasiFilesystemPreopens0212 from 'wasi:filesystem/preopens@0.2.12'; // import wasi:filesystem/preopens@0.2.12
  export type * as WasiFilesystemTypes0212 from 'wasi:filesystem/types@0.2.12'; // import wasi:filesystem/types@0.2.12
  export type * as WasiHttpOutgoingHandler0212 from 'wasi:http/outgoing-handler@0.2.12'; // import wasi:http/outgoing-handler@0.2.12
  export type * as WasiHttpTypes0212 from 'wasi:http/types@0.2.12'; // import wasi:http/types@0.2.12
  export type * as WasiIoError0212 from 'wasi:io/error@0.2.12'; // import wasi:io/error@0.2.12
  export type * as WasiIoPoll0212 from 'wasi:io/poll@0.2.12'; // import wasi:io/poll@0.2.12
  export type * as WasiIoStreams0212 from 'wasi:io/streams@0.2.12'; // import wasi:io/streams@0.2.12
  export type * as WasiRandomInsecureSeed0212 from 'wasi:random/insecure-seed@0.2.12'; // import wasi:random/insecure-seed@0.2.12
  export type * as WasiRandomInsecure0212 from 'wasi:random/insecure@0.2.12'; // import wasi:random/insecure@0.2.12
  export type * as WasiRandomRandom0212 from 'wasi:random/random@0.2.12'; // import wasi:random/random@0.2.12
  export type * as WasiSocketsInstanceNetwork0212 from 'wasi:sockets/instance-network@0.2.12'; // import wasi:sockets/instance-network@0.2.12
  export type * as WasiSocketsIpNameLookup0212 from 'wasi:sockets/ip-name-lookup@0.2.12'; // import wasi:sockets/ip-name-lookup@0.2.12
  export type * as WasiSocketsNetwork0212 from 'wasi:sockets/network@0.2.12'; // import wasi:sockets/network@0.2.12
  export type * as WasiSocketsTcpCreateSocket0212 from 'wasi:sockets/tcp-create-socket@0.2.12'; // import wasi:sockets/tcp-create-socket@0.2.12
  export type * as WasiSocketsTcp0212 from 'wasi:sockets/tcp@0.2.12'; // import wasi:sockets/tcp@0.2.12
  export type * as WasiSocketsUdpCreateSocket0212 from 'wasi:sockets/udp-create-socket@0.2.12'; // import wasi:sockets/udp-create-socket@0.2.12
  export type * as WasiSocketsUdp0212 from 'wasi:sockets/udp@0.2.12'; // import wasi:sockets/udp@0.2.12
  export * as plugin from 'sluice:stage/plugin@0.2.0'; // export sluice:stage/plugin@0.2.0
}
