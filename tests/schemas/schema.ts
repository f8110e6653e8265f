// Types the generated files are checked against (tests/grafana_schema.rs, tests/kubernetes.rs).
//
// @grafana/schema declares its string-valued enums (GraphDrawStyle, ThresholdsMode, …) as
// TypeScript enums, which JSON's plain strings do not satisfy; `Json<T>` is T with each such enum
// replaced by the union of its values, as a dashboard's JSON writes them, and every other field
// as T says (required stays required; unknown fields are errors in an object literal).
export type Json<T> = T extends string
  ? `${T}`
  : T extends number | boolean | null | undefined
    ? T
    : T extends readonly (infer U)[]
      ? Json<U>[]
      : T extends object
        ? { [K in keyof T]: Json<T[K]> }
        : T;

// A panel's options and field config as stored: Grafana fills in every field a panel leaves
// out from the panel plugin's defaults, so presence is not checked, but names and types are.
export type Stored<T> = T extends string
  ? `${T}`
  : T extends number | boolean | null | undefined
    ? T
    : T extends readonly (infer U)[]
      ? Stored<U>[]
      : T extends object
        ? { [K in keyof T]?: Stored<T[K]> }
        : T;
