//! Work per header hashed, counted from the kernel's naga IR: the 32-bit integer operations that
//! one turn of the sweep loop executes, over the headers it hashes (one per version), so that a
//! rate can be held against a spec sheet's integer throughput (MH/s × ops per hash = effective
//! operations per second).
//!
//! What counts: every arithmetic, bitwise, shift, comparison or built-in function whose value
//! depends on the nonce and that feeds the loop's outcome (its conditions, stores and calls),
//! through every call, in the blocks that a pipeline of `versions` versions compiles (`if
//! (VERSIONS > j)`, with the kernel's override). What does not: values of the uniform or of the
//! invocation's id alone (any compiler hoists them out of the loop), constants, loads and
//! swizzles, dead code, and the body of the rare branch that records a candidate. A rotate
//! written as shift, shift, or is three operations in `split` and one in `fused`, since GPUs
//! have a rotate (or funnel shift) instruction and their compilers fuse the pattern.

use std::collections::HashMap;

use naga::{Arena, BinaryOperator, Block, Expression, Function, Handle, Literal, Module, Statement};
use serde::{Deserialize, Serialize};

/// Operations per header hashed, two ways of counting rotates.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct OpCount {
    /// A rotate as shift, shift, or.
    pub split: f64,
    /// A rotate as one operation.
    pub fused: f64,
}

/// Whole operations, while counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Ops {
    split: u32,
    fused: u32,
}

impl std::ops::AddAssign for Ops {
    fn add_assign(&mut self, other: Ops) {
        self.split += other.split;
        self.fused += other.fused;
    }
}

/// A kernel whose work cannot be counted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpsError {
    #[error("{0}")]
    Parse(String),
    #[error("the shader has no entry point `{0}`")]
    NoEntryPoint(String),
    #[error("the entry point has no loop")]
    NoLoop,
}

/// Counts one turn of the first loop of the entry point `entry` in `source` (WGSL), in a
/// pipeline whose `VERSIONS` is `versions`, over the `versions` headers it hashes.
pub fn per_header(source: &str, entry: &str, versions: u32) -> Result<OpCount, OpsError> {
    let module = naga::front::wgsl::parse_str(source).map_err(|e| OpsError::Parse(e.emit_to_string(source)))?;
    let entry_point = module
        .entry_points
        .iter()
        .find(|e| e.name == entry)
        .ok_or_else(|| OpsError::NoEntryPoint(entry.to_string()))?;
    let function = &entry_point.function;
    let (body, continuing, break_if) = find_loop(&function.body).ok_or(OpsError::NoLoop)?;
    let mut counter = Counter { module: &module, versions, memo: HashMap::new() };
    // The loop's own variables (its counter) change every turn; everything the entry point
    // computed before the loop stays put.
    let scope = Scope::new(function, Varying::LocalLoads);
    let mut found = Found::default();
    for block in [body, continuing] {
        counter.collect(&function.expressions, block, false, &mut found);
    }
    found.roots.extend(break_if);
    let (ops, _) = counter.count(&scope, &found);
    let headers = f64::from(versions.max(1));
    Ok(OpCount { split: f64::from(ops.split) / headers, fused: f64::from(ops.fused) / headers })
}

/// What a block's outcome depends on: conditions, stored and returned values, and calls made
/// for their effect; and which call produced each call result.
#[derive(Default)]
struct Found {
    roots: Vec<Handle<Expression>>,
    calls: Calls,
    effects: Vec<(Handle<Function>, Vec<Handle<Expression>>)>,
}

/// The expressions the roots and the effects' arguments depend on (through calls' arguments, not
/// into their bodies).
fn live(expressions: &naga::Arena<Expression>, found: &Found) -> std::collections::HashSet<Handle<Expression>> {
    let calls = &found.calls;
    let mut live = std::collections::HashSet::new();
    let mut stack: Vec<Handle<Expression>> = found.roots.clone();
    stack.extend(found.effects.iter().flat_map(|(_, arguments)| arguments.iter().copied()));
    while let Some(h) = stack.pop() {
        if !live.insert(h) {
            continue;
        }
        match calls.get(&h) {
            Some((_, arguments)) => stack.extend(arguments),
            None => stack.extend(operands(&expressions[h])),
        }
    }
    live
}

fn find_loop(block: &Block) -> Option<(&Block, &Block, Option<Handle<Expression>>)> {
    block.iter().find_map(|statement| match statement {
        Statement::Loop { body, continuing, break_if } => Some((body, continuing, *break_if)),
        Statement::Block(inner) => find_loop(inner),
        _ => None,
    })
}

#[derive(Clone, Copy, PartialEq)]
enum Varying {
    /// The entry point: loads of local variables (the loop counter) vary.
    LocalLoads,
    /// A called function: the arguments marked true vary.
    Arguments(u64),
}

struct Scope<'a> {
    function: &'a Function,
    varying: Varying,
}

impl<'a> Scope<'a> {
    fn new(function: &'a Function, varying: Varying) -> Self {
        Scope { function, varying }
    }
}

struct Counter<'m> {
    module: &'m Module,
    /// The pipeline's `VERSIONS`: which of the kernel's guarded blocks it compiles.
    versions: u32,
    /// A function's count and whether its result varies, per set of varying arguments.
    memo: HashMap<(Handle<Function>, u64), (Ops, bool)>,
}

type Calls = HashMap<Handle<Expression>, (Handle<Function>, Vec<Handle<Expression>>)>;

impl Counter<'_> {
    /// Gathers what a block's outcome depends on into `found`. With `branches`, descends into
    /// both arms of an `if`; without, counts only the condition (the sweep loop's arms are the
    /// rare hit and the exit). A block guarded by `VERSIONS > j` is straight code where the
    /// pipeline has version j, and dead code where it does not.
    fn collect(&self, expressions: &Arena<Expression>, block: &Block, branches: bool, found: &mut Found) {
        for statement in block.iter() {
            match statement {
                Statement::If { condition, accept, .. } if self.guard(expressions, *condition) == Some(true) => {
                    self.collect(expressions, accept, branches, found);
                }
                Statement::If { condition, .. } if self.guard(expressions, *condition).is_some() => {}
                Statement::If { condition, accept, reject } => {
                    found.roots.push(*condition);
                    if branches {
                        self.collect(expressions, accept, true, found);
                        self.collect(expressions, reject, true, found);
                    }
                }
                Statement::Store { value, .. } => found.roots.push(*value),
                Statement::Return { value: Some(value) } => found.roots.push(*value),
                Statement::Call { function, arguments, result: Some(result) } => {
                    found.calls.insert(*result, (*function, arguments.clone()));
                }
                Statement::Call { function, arguments, result: None } => {
                    found.effects.push((*function, arguments.clone()));
                }
                Statement::Block(inner) => self.collect(expressions, inner, branches, found),
                _ => {}
            }
        }
    }

    /// `Some(VERSIONS > j)` for the kernel's guard of version j's block, `None` for another
    /// condition.
    fn guard(&self, expressions: &Arena<Expression>, condition: Handle<Expression>) -> Option<bool> {
        let Expression::Binary { op: BinaryOperator::Greater, left, right } = expressions[condition] else {
            return None;
        };
        let (Expression::Override(o), Expression::Literal(Literal::U32(j))) = (&expressions[left], &expressions[right])
        else {
            return None;
        };
        (self.module.overrides[*o].name.as_deref() == Some("VERSIONS")).then_some(self.versions > *j)
    }

    /// Counts the live, varying operations behind what `found` holds, each expression once,
    /// and the calls made for their effect with a varying argument; and says whether any root
    /// varies.
    fn count(&mut self, scope: &Scope, found: &Found) -> (Ops, bool) {
        let expressions = &scope.function.expressions;
        let (varies, call_counts) = self.varying(scope, &found.calls);
        let varying_mask = |arguments: &[Handle<Expression>]| {
            arguments.iter().enumerate().filter(|(_, a)| varies[a]).fold(0u64, |m, (i, _)| m | 1 << i)
        };
        let live = live(expressions, found);
        // The shifts of a rotate, counted once with their `or` when rotates fuse.
        let in_rotate: std::collections::HashSet<_> =
            live.iter().filter(|&&h| is_rotate(expressions, h)).flat_map(|&h| operands(&expressions[h])).collect();
        let mut total = Ops::default();
        for &h in live.iter().filter(|h| varies[h]) {
            match &expressions[h] {
                Expression::CallResult(_) => total += call_counts.get(&h).copied().unwrap_or_default(),
                Expression::Binary { .. } if in_rotate.contains(&h) => total.split += 1,
                Expression::Binary { .. }
                | Expression::Unary { .. }
                | Expression::Math { .. }
                | Expression::Select { .. } => total += Ops { split: 1, fused: 1 },
                _ => {}
            }
        }
        for (function, arguments) in &found.effects {
            let mask = varying_mask(arguments);
            if mask != 0 {
                total += self.function(*function, mask).0;
            }
        }
        (total, found.roots.iter().any(|r| varies[r]))
    }

    /// Which expressions of the scope vary; and the count of each call whose result is used.
    #[allow(clippy::type_complexity)]
    fn varying(
        &mut self,
        scope: &Scope,
        calls: &Calls,
    ) -> (HashMap<Handle<Expression>, bool>, HashMap<Handle<Expression>, Ops>) {
        let expressions = &scope.function.expressions;
        let mut varies: HashMap<Handle<Expression>, bool> = HashMap::new();
        let mut call_counts = HashMap::new();
        // Arena order puts operands before their users, so one pass settles what varies.
        for (handle, expression) in expressions.iter() {
            let value = match expression {
                Expression::FunctionArgument(i) => match scope.varying {
                    Varying::Arguments(mask) => mask >> i & 1 == 1,
                    Varying::LocalLoads => false,
                },
                Expression::Load { pointer } => {
                    scope.varying == Varying::LocalLoads
                        && matches!(expressions[*pointer], Expression::LocalVariable(_))
                }
                Expression::CallResult(_) => match calls.get(&handle) {
                    Some((function, arguments)) => {
                        let mask = arguments
                            .iter()
                            .enumerate()
                            .filter(|(_, a)| varies.get(a).copied().unwrap_or(false))
                            .fold(0u64, |m, (i, _)| m | 1 << i);
                        let (count, result_varies) = self.function(*function, mask);
                        call_counts.insert(handle, count);
                        result_varies
                    }
                    None => false,
                },
                other => operands(other).iter().any(|o| varies.get(o).copied().unwrap_or(false)),
            };
            varies.insert(handle, value);
        }
        (varies, call_counts)
    }

    fn function(&mut self, handle: Handle<Function>, mask: u64) -> (Ops, bool) {
        if let Some(done) = self.memo.get(&(handle, mask)) {
            return *done;
        }
        let function = &self.module.functions[handle];
        let mut found = Found::default();
        self.collect(&function.expressions, &function.body, true, &mut found);
        let scope = Scope::new(function, Varying::Arguments(mask));
        let done = self.count(&scope, &found);
        self.memo.insert((handle, mask), done);
        done
    }
}

/// `(x >> a) | (x << b)` or the other way round: a rotate.
fn is_rotate(expressions: &naga::Arena<Expression>, h: Handle<Expression>) -> bool {
    let Expression::Binary { op: BinaryOperator::InclusiveOr, left, right } = expressions[h] else {
        return false;
    };
    let shift = |h: Handle<Expression>| match expressions[h] {
        Expression::Binary { op: op @ (BinaryOperator::ShiftLeft | BinaryOperator::ShiftRight), left, .. } => {
            Some((op, left))
        }
        _ => None,
    };
    match (shift(left), shift(right)) {
        (Some((a, x)), Some((b, y))) => a != b && x == y,
        _ => false,
    }
}

fn operands(expression: &Expression) -> Vec<Handle<Expression>> {
    match *expression {
        Expression::Binary { left, right, .. } => vec![left, right],
        Expression::Unary { expr, .. } | Expression::As { expr, .. } => vec![expr],
        Expression::Select { condition, accept, reject } => vec![condition, accept, reject],
        Expression::Math { arg, arg1, arg2, arg3, .. } => [Some(arg), arg1, arg2, arg3].into_iter().flatten().collect(),
        Expression::Load { pointer } => vec![pointer],
        Expression::AccessIndex { base, .. } => vec![base],
        Expression::Access { base, index } => vec![base, index],
        Expression::Swizzle { vector, .. } => vec![vector],
        Expression::Splat { value, .. } => vec![value],
        Expression::Compose { ref components, .. } => components.clone(),
        Expression::Relational { argument, .. } => vec![argument],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counted by hand: per turn, `i < 4u` 1, `i ^ k` 1, the rotate 3 (or 1), `+ k` 1,
    /// `== 0u` 1, `i++` 1. Not counted: `k` (uniform only), the `32u - n` of the rotate (a
    /// constant), `dead` (feeds nothing), the store in the hit branch.
    const TINY: &str = r#"
        @group(0) @binding(0) var<uniform> u: vec4<u32>;
        @group(0) @binding(1) var<storage, read_write> out: array<u32>;
        fn rotr(x: u32, n: u32) -> u32 { return (x >> n) | (x << (32u - n)); }
        fn mix(x: u32, k: u32) -> u32 {
            let dead = x * 7u;
            return rotr(x ^ k, 7u) + k;
        }
        @compute @workgroup_size(1)
        fn sweep(@builtin(global_invocation_id) id: vec3<u32>) {
            let k = u.x * 3u + id.x;
            for (var i = 0u; i < 4u; i++) {
                if (mix(i, k) == 0u) {
                    out[id.x] = i * 5u + 1u;
                }
            }
        }
    "#;

    #[test]
    fn counts_a_hand_counted_kernel() {
        assert_eq!(per_header(TINY, "sweep", 1).unwrap(), OpCount { split: 8.0, fused: 6.0 });
    }

    /// Counted by hand: per nonce, `i < 4u`, `i ^ n`, `i++`; per version compiled, `+ j`,
    /// `>> 3u`, `== 0u` in `each`, called for its effect. Four versions: (3 + 3 × 2) / 2 per
    /// header hashed with VERSIONS = 2; the blocks past it count nothing.
    const VERSIONS: &str = r#"
        override VERSIONS: u32 = 1u;
        @group(0) @binding(0) var<uniform> u: vec4<u32>;
        @group(0) @binding(1) var<storage, read_write> out: array<u32>;
        fn each(x: u32, j: u32) {
            if (((x + j) >> 3u) == 0u) {
                out[j] = x;
            }
        }
        fn versions(x: u32) {
            each(x, u.x);
            if (VERSIONS > 1u) {
                each(x, u.y);
            }
            if (VERSIONS > 2u) {
                each(x, u.z);
            }
        }
        @compute @workgroup_size(1)
        fn sweep(@builtin(global_invocation_id) id: vec3<u32>) {
            let n = u.w;
            for (var i = 0u; i < 4u; i++) {
                versions(i ^ n);
            }
        }
    "#;

    #[test]
    fn counts_the_versions_a_pipeline_compiles() {
        assert_eq!(per_header(VERSIONS, "sweep", 1).unwrap(), OpCount { split: 6.0, fused: 6.0 });
        assert_eq!(per_header(VERSIONS, "sweep", 2).unwrap(), OpCount { split: 4.5, fused: 4.5 });
        assert_eq!(per_header(VERSIONS, "sweep", 3).unwrap(), OpCount { split: 4.0, fused: 4.0 });
    }

    /// Pinned, so that a change to the kernel's work shows up in review. For scale: the best
    /// published hand-written kernel, hdminer's (AMD IL, with BFI_INT and bitalign), states
    /// 3,757 per nonce with its rotates and selects as one instruction each; before versions
    /// shared a nonce's schedule this kernel did 3,721.
    #[test]
    fn counts_the_kernel() {
        let count = |k| per_header(crate::gpu::kernel::SOURCE, "sweep", k).unwrap();
        assert_eq!(count(1), OpCount { split: 5765.0, fused: 3721.0 });
        assert_eq!(count(2), OpCount { split: 5338.0, fused: 3448.0 });
        assert_eq!(count(4), OpCount { split: 5124.5, fused: 3311.5 });
        assert_eq!(count(8), OpCount { split: 5017.75, fused: 3243.25 });
        // What a nonce costs once (its schedule, 546) and what each version adds (3,175).
        assert_eq!(count(3).fused * 3.0 - count(2).fused * 2.0, 3175.0);
    }

    #[test]
    fn says_what_is_missing() {
        assert_eq!(per_header(TINY, "main", 1), Err(OpsError::NoEntryPoint("main".into())));
        assert!(per_header("fn f() {", "sweep", 1).is_err());
    }
}
