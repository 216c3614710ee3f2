declare module "virtual:reason-codes" {
  import type { ReasonDoc } from "../reason-codes-plugin.ts";

  const codes: Readonly<Record<string, ReasonDoc>>;
  export default codes;
}
