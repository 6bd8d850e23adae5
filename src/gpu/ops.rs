//! Work per nonce, counted from the kernel's naga IR: the 32-bit integer operations that one
//! turn of the sweep loop executes, so that a rate can be held against a spec sheet's integer
//! throughput (MH/s × ops per nonce = effective operations per second).
//!
//! What counts: every arithmetic, bitwise, shift, comparison or built-in function whose value
//! depends on the nonce and that feeds the loop's outcome (its conditions and stores), through
//! every call. What does not: values of the uniform or of the invocation's id alone (any
//! compiler hoists them out of the loop), constants, loads and swizzles, dead code, and the
//! body of the rare branch that records a candidate. A rotate written as shift, shift, or is
//! three operations in `split` and one in `fused`, since GPUs have a rotate (or funnel shift)
//! instruction and their compilers fuse the pattern.

use std::collections::HashMap;

use naga::{BinaryOperator, Block, Expression, Function, Handle, Module, Statement};
use serde::{Deserialize, Serialize};

/// Operations per nonce, two ways of counting rotates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OpCount {
    /// A rotate as shift, shift, or.
    pub split: u32,
    /// A rotate as one operation.
    pub fused: u32,
}

impl std::ops::AddAssign for OpCount {
    fn add_assign(&mut self, other: OpCount) {
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

/// Counts one turn of the first loop of the entry point `entry` in `source` (WGSL).
pub fn per_nonce(source: &str, entry: &str) -> Result<OpCount, OpsError> {
    let module = naga::front::wgsl::parse_str(source).map_err(|e| OpsError::Parse(e.emit_to_string(source)))?;
    let entry_point = module
        .entry_points
        .iter()
        .find(|e| e.name == entry)
        .ok_or_else(|| OpsError::NoEntryPoint(entry.to_string()))?;
    let function = &entry_point.function;
    let (body, continuing, break_if) = find_loop(&function.body).ok_or(OpsError::NoLoop)?;
    let mut counter = Counter { module: &module, memo: HashMap::new() };
    // The loop's own variables (its counter) change every turn; everything the entry point
    // computed before the loop stays put.
    let scope = Scope::new(function, Varying::LocalLoads);
    let mut roots = Vec::new();
    let mut calls = Calls::new();
    for block in [body, continuing] {
        collect(block, false, &mut roots, &mut calls);
    }
    roots.extend(break_if);
    Ok(counter.count(&scope, &roots, &calls).0)
}

/// The expressions `roots` depend on (through calls' arguments, not into their bodies).
fn live(
    expressions: &naga::Arena<Expression>,
    roots: &[Handle<Expression>],
    calls: &Calls,
) -> std::collections::HashSet<Handle<Expression>> {
    let mut live = std::collections::HashSet::new();
    let mut stack: Vec<Handle<Expression>> = roots.to_vec();
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

/// Gathers what a block's outcome depends on: conditions, stored values, returned values; and
/// which call produced each call result. With `branches`, descends into both arms of an `if`;
/// without, counts only the condition (the sweep loop's arms are the rare hit and the exit).
fn collect(block: &Block, branches: bool, roots: &mut Vec<Handle<Expression>>, calls: &mut Calls) {
    for statement in block.iter() {
        match statement {
            Statement::If { condition, accept, reject } => {
                roots.push(*condition);
                if branches {
                    collect(accept, true, roots, calls);
                    collect(reject, true, roots, calls);
                }
            }
            Statement::Store { value, .. } => roots.push(*value),
            Statement::Return { value: Some(value) } => roots.push(*value),
            Statement::Call { function, arguments, result: Some(result) } => {
                calls.insert(*result, (*function, arguments.clone()));
            }
            Statement::Block(inner) => collect(inner, branches, roots, calls),
            _ => {}
        }
    }
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
    /// A function's count and whether its result varies, per set of varying arguments.
    memo: HashMap<(Handle<Function>, u64), (OpCount, bool)>,
}

type Calls = HashMap<Handle<Expression>, (Handle<Function>, Vec<Handle<Expression>>)>;

impl Counter<'_> {
    /// Counts the live, varying operations behind `roots`, each expression once; and says
    /// whether any root varies.
    fn count(&mut self, scope: &Scope, roots: &[Handle<Expression>], calls: &Calls) -> (OpCount, bool) {
        let expressions = &scope.function.expressions;
        let mut varies: HashMap<Handle<Expression>, bool> = HashMap::new();
        // Arena order puts operands before their users, so one pass settles what varies.
        let mut call_counts: HashMap<Handle<Expression>, OpCount> = HashMap::new();
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

        let live = live(expressions, roots, calls);

        // The shifts of a rotate, counted once with their `or` when rotates fuse.
        let in_rotate: std::collections::HashSet<_> =
            live.iter().filter(|&&h| is_rotate(expressions, h)).flat_map(|&h| operands(&expressions[h])).collect();
        let mut total = OpCount::default();
        for &h in &live {
            if !varies[&h] {
                continue;
            }
            match &expressions[h] {
                Expression::CallResult(_) => total += call_counts.get(&h).copied().unwrap_or_default(),
                Expression::Binary { .. } if in_rotate.contains(&h) => total.split += 1,
                Expression::Binary { .. }
                | Expression::Unary { .. }
                | Expression::Math { .. }
                | Expression::Select { .. } => total += OpCount { split: 1, fused: 1 },
                _ => {}
            }
        }
        (total, roots.iter().any(|r| varies[r]))
    }

    fn function(&mut self, handle: Handle<Function>, mask: u64) -> (OpCount, bool) {
        if let Some(done) = self.memo.get(&(handle, mask)) {
            return *done;
        }
        let function = &self.module.functions[handle];
        let mut roots = Vec::new();
        let mut calls = HashMap::new();
        collect(&function.body, true, &mut roots, &mut calls);
        let scope = Scope::new(function, Varying::Arguments(mask));
        let done = self.count(&scope, &roots, &calls);
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
        assert_eq!(per_nonce(TINY, "sweep").unwrap(), OpCount { split: 8, fused: 6 });
    }

    /// Pinned, so that a change to the kernel's work shows up in review. For scale: the best
    /// published hand-written kernel, hdminer's (AMD IL, with BFI_INT and bitalign), states
    /// 3,757 per nonce with its rotates and selects as one instruction each.
    #[test]
    fn counts_the_kernel() {
        let count = per_nonce(crate::gpu::kernel::SOURCE, "sweep").unwrap();
        assert_eq!(count, OpCount { split: 5765, fused: 3721 });
    }

    #[test]
    fn says_what_is_missing() {
        assert_eq!(per_nonce(TINY, "main"), Err(OpsError::NoEntryPoint("main".into())));
        assert!(per_nonce("fn f() {", "sweep").is_err());
    }
}
