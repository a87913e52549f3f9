/// <reference path="./sluice-stage-types.d.ts" />
declare module 'sluice:stage/plugin@0.2.0' {
  /**
   * Describe the plugin. Called by `sluice plugin inspect` and before a
   * stage runs; must be fast (10 s at most) and side-effect free. It has
   * no workspace, network, programs or secrets.
   */
  export function describe(): PluginInfo;
  /**
   * Run the stage once. Returning `err` fails the stage (`denied` and
   * `invalid-config` are never retried); a trap fails it too, with the
   * trap (or the panic message) as the reason. A report that breaks the
   * runner's limits (names, sizes, NaN metrics, repeated gates, bad
   * finding paths) fails the stage with the rule it broke.
   */
  export function run(ctx: Context): Report;
  export type PluginInfo = import('sluice:stage/types@0.2.0').PluginInfo;
  export type Context = import('sluice:stage/types@0.2.0').Context;
  export type Report = import('sluice:stage/types@0.2.0').Report;
  export type StageError = import('sluice:stage/types@0.2.0').StageError;
}
