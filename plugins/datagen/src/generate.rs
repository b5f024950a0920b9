//! The row engine: turns `(seed, seq)` into Arrow columns for one event kind.
//!
//! Every column except `timestamp` is a pure function of `(seed, seq)`: each
//! row draws from its own [`Rng`] seeded from both, so a row does not depend
//! on which batch it landed in, on the batch size, or on a restart in between.
//! That is what lets a test (or an operator comparing two runs) regenerate
//! exactly the rows a source produced.
//!
//! The engine knows nothing about pacing, checkpoints or the plugin ABI; the
//! glue in `lib.rs` decides *which* rows to build and *when*.

use std::f64::consts::TAU;
use std::fmt::Write as _;
use std::sync::Arc;

use arrow_array::builder::{
    ArrayBuilder, Float64Builder, Int64Builder, ListBuilder, StringBuilder, StructBuilder,
};
use arrow_array::{ArrayRef, RecordBatch, TimestampMillisecondArray, UInt64Array};
use arrow_schema::{ArrowError, DataType, Field, FieldRef, Fields, Schema, SchemaRef, TimeUnit};

/// The event kinds the generator knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// E-commerce orders with nested line items.
    Orders,
    /// Application log lines.
    Logs,
    /// Host metrics samples.
    Metrics,
    /// Web click-stream events.
    Clicks,
}

impl Kind {
    /// The names accepted by the `kind` option, in declaration order.
    pub const NAMES: [&'static str; 4] = ["orders", "logs", "metrics", "clicks"];

    /// Parses the `kind` option.
    pub fn parse(name: &str) -> Option<Kind> {
        match name {
            "orders" => Some(Kind::Orders),
            "logs" => Some(Kind::Logs),
            "metrics" => Some(Kind::Metrics),
            "clicks" => Some(Kind::Clicks),
            _ => None,
        }
    }

    /// The option value naming this kind.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Orders => "orders",
            Kind::Logs => "logs",
            Kind::Metrics => "metrics",
            Kind::Clicks => "clicks",
        }
    }
}

/// Builds record batches of one kind.
///
/// Holds the schema so every batch shares one `Arc` (and downstream code can
/// compare schemas by pointer), and the few parameters rows depend on.
#[derive(Debug, Clone)]
pub struct RowGenerator {
    kind: Kind,
    seed: u64,
    /// Size of the customer / user id pool; always at least 1.
    customers: u64,
    schema: SchemaRef,
    /// The element field of `orders.items`, reused so the list builder
    /// produces exactly the type the schema declares.
    item_field: FieldRef,
}

impl RowGenerator {
    /// A generator of `kind` rows. `customers` is clamped to at least 1.
    pub fn new(kind: Kind, seed: u64, customers: u64) -> Self {
        let item_field = Arc::new(Field::new("item", DataType::Struct(item_fields()), false));
        RowGenerator {
            kind,
            seed,
            customers: customers.max(1),
            schema: schema(kind, &item_field),
            item_field,
        }
    }

    /// The schema of every batch this generator builds.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Builds rows `first_seq .. first_seq + rows`, stamped with `now_ms`
    /// (milliseconds since the Unix epoch).
    ///
    /// `first_seq + rows` must not overflow `u64`; the caller caps `rows`.
    pub fn batch(
        &self,
        first_seq: u64,
        rows: usize,
        now_ms: i64,
    ) -> Result<RecordBatch, ArrowError> {
        let seqs = first_seq..first_seq + rows as u64;
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.schema.fields().len());
        columns.push(Arc::new(UInt64Array::from_iter_values(seqs.clone())));
        match self.kind {
            Kind::Orders => self.orders(seqs, rows, &mut columns),
            Kind::Logs => self.logs(seqs, rows, &mut columns),
            Kind::Metrics => self.metrics(seqs, rows, &mut columns),
            Kind::Clicks => self.clicks(seqs, rows, &mut columns),
        }
        // One clock reading per batch: rows of a batch are generated within
        // microseconds of each other, and reading the clock per row would
        // cost more than generating the row.
        columns.push(Arc::new(
            TimestampMillisecondArray::from_value(now_ms, rows).with_timezone(UTC),
        ));
        RecordBatch::try_new(self.schema.clone(), columns)
    }

    fn row_rng(&self, seq: u64) -> Rng {
        Rng::for_row(self.seed, seq)
    }

    fn orders(&self, seqs: std::ops::Range<u64>, n: usize, columns: &mut Vec<ArrayRef>) {
        // Capacities from the average shapes (12-byte order ids, ~2 items
        // of ~16-byte names per order) so a batch allocates each buffer once.
        let mut order_id = StringBuilder::with_capacity(n, n * 12);
        let mut customer_id = StringBuilder::with_capacity(n, n * 10);
        let item_cap = n * 3;
        let item_builder = StructBuilder::new(
            item_fields(),
            vec![
                Box::new(StringBuilder::with_capacity(item_cap, item_cap * 16)),
                Box::new(Int64Builder::with_capacity(item_cap)),
                Box::new(Float64Builder::with_capacity(item_cap)),
                Box::new(Float64Builder::with_capacity(item_cap)),
            ],
        );
        let mut items =
            ListBuilder::with_capacity(item_builder, n).with_field(self.item_field.clone());
        let mut total = Float64Builder::with_capacity(n);
        let mut status = StringBuilder::with_capacity(n, n * 8);

        for seq in seqs {
            let mut rng = self.row_rng(seq);
            append_number(&mut order_id, "ORD-", seq, 8);
            append_number(&mut customer_id, "CUST-", rng.below(self.customers), 4);

            // Draw the whole order first, then write it column by column, so
            // each child builder is looked up once per order, not per item.
            let line_count = 1 + rng.weighted(&ITEMS_PER_ORDER_WEIGHTS);
            let mut lines = [(0usize, 0i64); 5];
            let mut total_cents = 0i64;
            for line in &mut lines[..line_count] {
                let product = rng.below(CATALOG.len() as u64) as usize;
                let quantity = 1 + rng.weighted(&QUANTITY_WEIGHTS) as i64;
                total_cents += CATALOG[product].cents * quantity;
                *line = (product, quantity);
            }
            let lines = &lines[..line_count];
            let item = items.values();
            let products = child::<StringBuilder>(item, 0);
            for &(p, _) in lines {
                products.append_value(CATALOG[p].name);
            }
            let quantities = child::<Int64Builder>(item, 1);
            for &(_, q) in lines {
                quantities.append_value(q);
            }
            let unit_prices = child::<Float64Builder>(item, 2);
            for &(p, _) in lines {
                unit_prices.append_value(from_cents(CATALOG[p].cents));
            }
            let subtotals = child::<Float64Builder>(item, 3);
            for &(p, q) in lines {
                subtotals.append_value(from_cents(CATALOG[p].cents * q));
            }
            item.append_non_nulls(line_count);
            items.append(true);

            total.append_value(from_cents(total_cents));
            status.append_value(ORDER_STATUSES[rng.weighted(&ORDER_STATUS_WEIGHTS)]);
        }
        columns.push(Arc::new(order_id.finish()));
        columns.push(Arc::new(customer_id.finish()));
        columns.push(Arc::new(items.finish()));
        columns.push(Arc::new(total.finish()));
        columns.push(Arc::new(status.finish()));
    }

    fn logs(&self, seqs: std::ops::Range<u64>, n: usize, columns: &mut Vec<ArrayRef>) {
        let mut level = StringBuilder::with_capacity(n, n * 5);
        let mut module = StringBuilder::with_capacity(n, n * 12);
        let mut message = StringBuilder::with_capacity(n, n * 40);
        let mut request_id = StringBuilder::with_capacity(n, n * 20);
        let mut user_id = StringBuilder::with_capacity(n, n * 10);
        let mut duration_ms = Float64Builder::with_capacity(n);

        for seq in seqs {
            let mut rng = self.row_rng(seq);
            let lvl = rng.weighted(&LOG_LEVEL_WEIGHTS);
            level.append_value(LOG_LEVELS[lvl]);
            let templates = LOG_TEMPLATES[lvl];
            let template = &templates[rng.below(templates.len() as u64) as usize];
            module.append_value(template.module);
            template.render(&mut message, &mut rng);
            append_hex(&mut request_id, "req-", rng.next_u64(), 16);
            // Background jobs and anonymous requests carry no user.
            if rng.chance(0.2) {
                user_id.append_null();
            } else {
                append_number(&mut user_id, "CUST-", rng.below(self.customers), 4);
            }
            // Latencies are log-normal in practice: most requests are fast,
            // a long tail is slow, and warnings and errors skew slow.
            let ms = LOG_MEDIAN_MS[lvl] * (0.8 * rng.normal()).exp();
            duration_ms.append_value((ms * 1000.0).round() / 1000.0);
        }
        columns.push(Arc::new(level.finish()));
        columns.push(Arc::new(module.finish()));
        columns.push(Arc::new(message.finish()));
        columns.push(Arc::new(request_id.finish()));
        columns.push(Arc::new(user_id.finish()));
        columns.push(Arc::new(duration_ms.finish()));
    }

    fn metrics(&self, seqs: std::ops::Range<u64>, n: usize, columns: &mut Vec<ArrayRef>) {
        let mut host = StringBuilder::with_capacity(n, n * 9);
        let mut cpu = Float64Builder::with_capacity(n);
        let mut memory = Float64Builder::with_capacity(n);
        let mut disk = Float64Builder::with_capacity(n);
        let mut rx = Int64Builder::with_capacity(n);
        let mut tx = Int64Builder::with_capacity(n);

        let host_count = (HOST_ROLES.len() * HOSTS_PER_ROLE) as u64;
        for seq in seqs {
            // Hosts report round-robin, one sample per host per tick, so a
            // host's readings form a smooth series instead of white noise.
            let host_index = seq % host_count;
            let tick = (seq / host_count) as f64;
            let role = &HOST_ROLES[(host_index as usize) / HOSTS_PER_ROLE];
            append_number(
                &mut host,
                role.prefix,
                host_index % HOSTS_PER_ROLE as u64 + 1,
                2,
            );

            // The host's character (baseline load, cycle length) depends on
            // the seed and the host only, not on the row.
            let mut h = Rng::new(self.seed ^ mix64(host_index ^ 0x686f_7374));
            let cpu_base = role.cpu_percent + h.uniform(-10.0, 10.0);
            let period = h.uniform(240.0, 720.0);
            let phase = h.uniform(0.0, TAU);
            let mem_base = h.uniform(35.0, 80.0);
            let disk_base = h.uniform(20.0, 75.0);

            let mut rng = self.row_rng(seq);
            let wave = (TAU * tick / period + phase).sin();
            let cpu_pct = clamp_percent(cpu_base + 15.0 * wave + rng.uniform(-6.0, 6.0));
            let slow_wave = (TAU * tick / (3.0 * period) + phase).sin();
            let mem_pct = clamp_percent(mem_base + 5.0 * slow_wave + rng.uniform(-1.5, 1.5));
            // Disks fill slowly and get cleaned up every 10 000 ticks.
            let fill = (tick % 10_000.0) / 10_000.0 * 8.0;
            let disk_pct = clamp_percent(disk_base + fill + rng.uniform(-0.2, 0.2));
            let busy = 0.6 + cpu_pct / 100.0;
            cpu.append_value(cpu_pct);
            memory.append_value(mem_pct);
            disk.append_value(disk_pct);
            rx.append_value((role.rx_bytes * busy * rng.uniform(0.8, 1.2)) as i64);
            tx.append_value((role.tx_bytes * busy * rng.uniform(0.8, 1.2)) as i64);
        }
        columns.push(Arc::new(host.finish()));
        columns.push(Arc::new(cpu.finish()));
        columns.push(Arc::new(memory.finish()));
        columns.push(Arc::new(disk.finish()));
        columns.push(Arc::new(rx.finish()));
        columns.push(Arc::new(tx.finish()));
    }

    fn clicks(&self, seqs: std::ops::Range<u64>, n: usize, columns: &mut Vec<ArrayRef>) {
        let mut user_id = StringBuilder::with_capacity(n, n * 10);
        let mut session_id = StringBuilder::with_capacity(n, n * 21);
        let mut page = StringBuilder::with_capacity(n, n * 20);
        let mut action = StringBuilder::with_capacity(n, n * 6);
        let mut referrer = StringBuilder::with_capacity(n, n * 16);
        let mut device = StringBuilder::with_capacity(n, n * 7);

        for seq in seqs {
            let mut rng = self.row_rng(seq);
            // `SESSION_SLOTS` sessions are open at any time and their events
            // interleave; each slot starts a new session every
            // `SESSION_SPAN` rows, staggered so they do not all end together.
            let slot = rng.below(SESSION_SLOTS);
            let epoch = (seq + slot * (SESSION_SPAN / SESSION_SLOTS)) / SESSION_SPAN;
            let session_key = mix64(self.seed ^ mix64((slot << 48) ^ epoch ^ 0x7365_7373));
            let mut session = Rng::new(session_key);
            append_number(&mut user_id, "CUST-", session.below(self.customers), 4);
            append_hex(&mut session_id, "sess-", session_key, 16);
            device.append_value(DEVICES[session.weighted(&DEVICE_WEIGHTS)]);
            match REFERRERS[session.weighted(&REFERRER_WEIGHTS)] {
                Some(r) => referrer.append_value(r),
                None => referrer.append_null(),
            }

            let act = rng.weighted(&ACTION_WEIGHTS);
            action.append_value(ACTIONS[act]);
            match ACTIONS[act] {
                "add_to_cart" | "remove_from_cart" => product_page(&mut page, &mut rng),
                "purchase" => page.append_value("/checkout/complete"),
                "search" => {
                    let term = SEARCH_TERMS[rng.below(SEARCH_TERMS.len() as u64) as usize];
                    put(&mut page, "/search?q=");
                    page.append_value(term);
                }
                _ => match rng.weighted(&PAGE_WEIGHTS) {
                    0 => page.append_value("/"),
                    1 => product_page(&mut page, &mut rng),
                    2 => {
                        let cat = CATEGORIES[rng.below(CATEGORIES.len() as u64) as usize];
                        put(&mut page, "/category/");
                        page.append_value(cat);
                    }
                    3 => page.append_value("/cart"),
                    4 => page.append_value("/deals"),
                    _ => page.append_value("/account"),
                },
            }
        }
        columns.push(Arc::new(user_id.finish()));
        columns.push(Arc::new(session_id.finish()));
        columns.push(Arc::new(page.finish()));
        columns.push(Arc::new(action.finish()));
        columns.push(Arc::new(referrer.finish()));
        columns.push(Arc::new(device.finish()));
    }
}

const UTC: &str = "UTC";

fn timestamp_field() -> Field {
    Field::new(
        "timestamp",
        DataType::Timestamp(TimeUnit::Millisecond, Some(UTC.into())),
        false,
    )
}

fn item_fields() -> Fields {
    Fields::from(vec![
        Field::new("product", DataType::Utf8, false),
        Field::new("quantity", DataType::Int64, false),
        Field::new("unit_price", DataType::Float64, false),
        Field::new("subtotal", DataType::Float64, false),
    ])
}

fn schema(kind: Kind, item_field: &FieldRef) -> SchemaRef {
    let utf8 = |name: &str| Field::new(name, DataType::Utf8, false);
    let mut fields = vec![Field::new("seq", DataType::UInt64, false)];
    match kind {
        Kind::Orders => fields.extend([
            utf8("order_id"),
            utf8("customer_id"),
            Field::new("items", DataType::List(item_field.clone()), false),
            Field::new("total", DataType::Float64, false),
            utf8("status"),
        ]),
        Kind::Logs => fields.extend([
            utf8("level"),
            utf8("module"),
            utf8("message"),
            utf8("request_id"),
            Field::new("user_id", DataType::Utf8, true),
            Field::new("duration_ms", DataType::Float64, false),
        ]),
        Kind::Metrics => fields.extend([
            utf8("host"),
            Field::new("cpu_percent", DataType::Float64, false),
            Field::new("memory_percent", DataType::Float64, false),
            Field::new("disk_percent", DataType::Float64, false),
            Field::new("network_rx_bytes", DataType::Int64, false),
            Field::new("network_tx_bytes", DataType::Int64, false),
        ]),
        Kind::Clicks => fields.extend([
            utf8("user_id"),
            utf8("session_id"),
            utf8("page"),
            utf8("action"),
            Field::new("referrer", DataType::Utf8, true),
            utf8("device"),
        ]),
    }
    fields.push(timestamp_field());
    Arc::new(Schema::new(fields))
}

/// The typed child builder `i` of an order item.
fn child<T: ArrayBuilder>(item: &mut StructBuilder, i: usize) -> &mut T {
    // Invariant: `orders` builds the item struct with exactly the child
    // builder types its callers ask for, so the downcast cannot fail.
    item.field_builder::<T>(i)
        .expect("order item child builders have the types `orders` created")
}

/// Writes part of the next string value.
///
/// `StringBuilder`'s `fmt::Write` appends straight into the value buffer and
/// never fails, which is why strings here are assembled in place instead of
/// through a `format!`-allocated `String` per row.
fn put(b: &mut StringBuilder, s: &str) {
    let _ = b.write_str(s);
}

/// Appends `prefix` followed by `n` zero-padded to `width` digits (at most 20)
/// as one string value, e.g. `ORD-00000042`.
fn append_number(b: &mut StringBuilder, prefix: &str, n: u64, width: usize) {
    const ZEROS: &str = "00000000000000000000";
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    let mut v = n;
    loop {
        start -= 1;
        digits[start] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    put(b, prefix);
    put(
        b,
        &ZEROS[..width.min(20).saturating_sub(digits.len() - start)],
    );
    b.append_value(std::str::from_utf8(&digits[start..]).unwrap_or_default());
}

/// Appends `prefix` followed by the low `width` (at most 16) hex digits of `v`.
fn append_hex(b: &mut StringBuilder, prefix: &str, v: u64, width: usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let width = width.min(16);
    let mut digits = [0u8; 16];
    for (i, d) in digits[..width].iter_mut().enumerate() {
        *d = HEX[((v >> (4 * (width - 1 - i))) & 0xf) as usize];
    }
    put(b, prefix);
    b.append_value(std::str::from_utf8(&digits[..width]).unwrap_or_default());
}

fn product_page(page: &mut StringBuilder, rng: &mut Rng) {
    put(page, "/products/");
    page.append_value(CATALOG[rng.below(CATALOG.len() as u64) as usize].slug);
}

/// Prices are kept in integer cents and converted once, so a subtotal is
/// exactly `unit_price × quantity` rounded to cents and the total exactly the
/// sum of the subtotals, with no float error to accumulate.
fn from_cents(cents: i64) -> f64 {
    cents as f64 / 100.0
}

/// Clamps to 0..=100 and rounds to one decimal, as monitoring agents report.
fn clamp_percent(v: f64) -> f64 {
    (v.clamp(0.0, 100.0) * 10.0).round() / 10.0
}

/// The splitmix64 finaliser: a bijective 64-bit mix with good avalanche.
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// splitmix64: tiny, fast, and good enough for synthetic data. Hand-written
/// so the output can never change under us with a dependency upgrade, which
/// would break the "same seed, same rows" promise.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

    /// A generator starting from `state`.
    pub fn new(state: u64) -> Self {
        Rng(state)
    }

    /// The generator for row `seq` under `seed`. `seq` is mixed first so
    /// neighbouring rows start from unrelated states.
    pub fn for_row(seed: u64, seq: u64) -> Self {
        Rng(seed ^ mix64(seq.wrapping_add(Self::GAMMA)))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(Self::GAMMA);
        mix64(self.0)
    }

    /// A value in `0..n` (0 when `n` is 0), by multiply-shift: no division
    /// and a bias far below anything synthetic data could show.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// A float in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A float in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// A standard normal deviate (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.unit(); // in (0, 1], so ln is finite
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (TAU * u2).cos()
    }

    /// An index into `weights`, chosen in proportion to the weights.
    pub fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
        let mut r = self.below(total);
        for (i, &w) in weights.iter().enumerate() {
            if r < u64::from(w) {
                return i;
            }
            r -= u64::from(w);
        }
        weights.len().saturating_sub(1)
    }
}

struct Product {
    name: &'static str,
    slug: &'static str,
    cents: i64,
}

const fn product(name: &'static str, slug: &'static str, cents: i64) -> Product {
    Product { name, slug, cents }
}

const CATALOG: &[Product] = &[
    product("Wireless Mouse", "wireless-mouse", 2499),
    product("Mechanical Keyboard", "mechanical-keyboard", 8999),
    product("USB-C Cable", "usb-c-cable", 1299),
    product("27in Monitor", "27in-monitor", 27999),
    product("Laptop Stand", "laptop-stand", 3950),
    product(
        "Noise-Cancelling Headphones",
        "noise-cancelling-headphones",
        19900,
    ),
    product("Webcam 1080p", "webcam-1080p", 5999),
    product("Desk Lamp", "desk-lamp", 3475),
    product("Coffee Mug", "coffee-mug", 1250),
    product("Notebook A5", "notebook-a5", 699),
    product("Gel Pen Set", "gel-pen-set", 899),
    product("Backpack", "backpack", 6900),
    product("Water Bottle", "water-bottle", 1999),
    product("Running Shoes", "running-shoes", 11995),
    product("Yoga Mat", "yoga-mat", 2999),
    product("Bluetooth Speaker", "bluetooth-speaker", 4999),
    product("Phone Case", "phone-case", 1599),
    product("Screen Protector", "screen-protector", 999),
    product("Power Bank", "power-bank", 3499),
    product("Smart Watch", "smart-watch", 24900),
    product("Espresso Beans 1kg", "espresso-beans-1kg", 2390),
    product("Green Tea 100 bags", "green-tea-100", 850),
    product("Chef Knife", "chef-knife", 7450),
    product("Cutting Board", "cutting-board", 2199),
    product("Cast Iron Pan", "cast-iron-pan", 4495),
    product("Throw Blanket", "throw-blanket", 3999),
    product("Scented Candle", "scented-candle", 1895),
    product("Board Game", "board-game", 3499),
    product("Jigsaw Puzzle", "jigsaw-puzzle", 1999),
    product("Paperback Novel", "paperback-novel", 1499),
    product("HDMI Adapter", "hdmi-adapter", 1749),
    product("Ergonomic Chair", "ergonomic-chair", 34900),
];

/// Orders of one item are the most common; five items are rare.
const ITEMS_PER_ORDER_WEIGHTS: [u32; 5] = [45, 25, 15, 10, 5];
const QUANTITY_WEIGHTS: [u32; 5] = [70, 17, 7, 4, 2];
const ORDER_STATUSES: [&str; 5] = ["pending", "paid", "shipped", "delivered", "cancelled"];
const ORDER_STATUS_WEIGHTS: [u32; 5] = [15, 30, 25, 25, 5];

const LOG_LEVELS: [&str; 4] = ["DEBUG", "INFO", "WARN", "ERROR"];
/// Most production lines are INFO; errors are a few percent.
const LOG_LEVEL_WEIGHTS: [u32; 4] = [20, 68, 9, 3];
const LOG_MEDIAN_MS: [f64; 4] = [2.0, 35.0, 450.0, 900.0];

/// A log message: `text` with each `{}` replaced by a random integer from the
/// matching inclusive range in `args`.
struct Template {
    module: &'static str,
    text: &'static str,
    args: &'static [(u64, u64)],
}

impl Template {
    fn render(&self, b: &mut StringBuilder, rng: &mut Rng) {
        let mut parts = self.text.split("{}");
        if let Some(first) = parts.next() {
            put(b, first);
        }
        for (part, &(lo, hi)) in parts.zip(self.args) {
            let _ = write!(b, "{}", lo + rng.below(hi - lo + 1));
            put(b, part);
        }
        b.append_value("");
    }
}

const fn t(module: &'static str, text: &'static str, args: &'static [(u64, u64)]) -> Template {
    Template { module, text, args }
}

/// Order numbers in messages, always eight digits like `order_id`.
const ORDER_NO: (u64, u64) = (10_000_000, 99_999_999);

/// Templates per level, indexed like [`LOG_LEVELS`]; the module and message
/// are chosen together so they stay coherent.
const LOG_TEMPLATES: [&[Template]; 4] = [
    &[
        t("cache.redis", "Cache miss for key product:{}", &[(1, 5000)]),
        t(
            "db.pool",
            "Acquired connection {} of 20 from pool",
            &[(1, 20)],
        ),
        t(
            "api.http",
            "Parsed request body of {} bytes",
            &[(64, 65536)],
        ),
        t(
            "auth.session",
            "Refreshed session token, expires in {} s",
            &[(300, 3600)],
        ),
    ],
    &[
        t(
            "api.http",
            "GET /api/products/{} returned 200",
            &[(1, 5000)],
        ),
        t("api.http", "POST /api/orders returned 201", &[]),
        t(
            "orders",
            "Order ORD-{} created with {} items",
            &[ORDER_NO, (1, 5)],
        ),
        t("auth.session", "User signed in", &[]),
        t(
            "payments.gateway",
            "Payment captured for order ORD-{}",
            &[ORDER_NO],
        ),
        t("search.index", "Search returned {} results", &[(0, 250)]),
        t("worker.email", "Sent order confirmation email", &[]),
    ],
    &[
        t(
            "db.pool",
            "Slow query on orders table took {} ms",
            &[(500, 4000)],
        ),
        t(
            "api.http",
            "Client 10.0.{}.{} is at {} percent of its rate limit",
            &[(0, 255), (1, 254), (80, 99)],
        ),
        t(
            "payments.gateway",
            "Retrying payment request, attempt {} of 3",
            &[(2, 3)],
        ),
        t(
            "cache.redis",
            "Evicting {} keys per second",
            &[(1000, 20000)],
        ),
    ],
    &[
        t(
            "payments.gateway",
            "Payment declined for order ORD-{}: card_declined",
            &[ORDER_NO],
        ),
        t("db.pool", "Connection to db-0{} refused", &[(1, 4)]),
        t(
            "api.http",
            "Upstream inventory service timed out after {} ms",
            &[(5000, 30000)],
        ),
        t(
            "worker.email",
            "SMTP delivery failed: 421 service not available",
            &[],
        ),
    ],
];

struct HostRole {
    /// The host name up to its number, e.g. `web-`.
    prefix: &'static str,
    cpu_percent: f64,
    /// Bytes received and sent per sample interval at nominal load.
    rx_bytes: f64,
    tx_bytes: f64,
}

const fn role(prefix: &'static str, cpu_percent: f64, rx_bytes: f64, tx_bytes: f64) -> HostRole {
    HostRole {
        prefix,
        cpu_percent,
        rx_bytes,
        tx_bytes,
    }
}

const HOSTS_PER_ROLE: usize = 4;
const HOST_ROLES: [HostRole; 6] = [
    role("web-", 35.0, 8e6, 40e6),
    role("api-", 45.0, 12e6, 15e6),
    role("db-", 55.0, 20e6, 30e6),
    role("cache-", 20.0, 30e6, 30e6),
    role("worker-", 60.0, 2e6, 1e6),
    role("kafka-", 40.0, 60e6, 60e6),
];

const SESSION_SLOTS: u64 = 64;
/// Rows per session slot epoch: with 64 slots, about 16 events per session.
const SESSION_SPAN: u64 = 1024;

const ACTIONS: [&str; 6] = [
    "view",
    "click",
    "search",
    "add_to_cart",
    "remove_from_cart",
    "purchase",
];
const ACTION_WEIGHTS: [u32; 6] = [55, 28, 6, 7, 2, 2];
/// Home, product, category, cart, deals, account.
const PAGE_WEIGHTS: [u32; 6] = [15, 45, 20, 8, 7, 5];
const CATEGORIES: [&str; 6] = ["electronics", "home", "kitchen", "sports", "books", "toys"];
const SEARCH_TERMS: [&str; 8] = [
    "headphones",
    "usb+c",
    "coffee",
    "running+shoes",
    "desk",
    "gift",
    "monitor",
    "yoga",
];
const DEVICES: [&str; 3] = ["desktop", "mobile", "tablet"];
const DEVICE_WEIGHTS: [u32; 3] = [48, 44, 8];
/// `None` is direct traffic, which has no referrer.
const REFERRERS: [Option<&str>; 7] = [
    Some("https://www.google.com/"),
    Some("https://www.bing.com/"),
    Some("https://t.co/"),
    Some("https://www.facebook.com/"),
    Some("https://news.ycombinator.com/"),
    Some("https://mail.example.com/newsletter"),
    None,
];
const REFERRER_WEIGHTS: [u32; 7] = [40, 5, 6, 8, 3, 8, 30];

#[cfg(test)]
mod tests {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float64Type, Int64Type};
    use arrow_array::{Array, ListArray, StringArray};

    use super::*;

    const ALL: [Kind; 4] = [Kind::Orders, Kind::Logs, Kind::Metrics, Kind::Clicks];

    fn strings<'a>(b: &'a RecordBatch, name: &str) -> &'a StringArray {
        b.column_by_name(name)
            .expect("column exists")
            .as_string::<i32>()
    }

    fn without_timestamp(b: &RecordBatch) -> RecordBatch {
        let keep: Vec<usize> = (0..b.num_columns() - 1).collect();
        b.project(&keep).expect("valid projection")
    }

    #[test]
    fn rows_depend_only_on_seed_and_seq() {
        for kind in ALL {
            let g = RowGenerator::new(kind, 7, 1000);
            let whole = g.batch(0, 300, 1).unwrap();
            let part = g.batch(100, 100, 2).unwrap();
            assert_eq!(
                without_timestamp(&whole.slice(100, 100)),
                without_timestamp(&part),
                "{kind:?}: rows 100..200 differ between batch layouts"
            );
            let again = RowGenerator::new(kind, 7, 1000).batch(0, 300, 3).unwrap();
            assert_eq!(
                without_timestamp(&whole),
                without_timestamp(&again),
                "{kind:?}"
            );
            let other = RowGenerator::new(kind, 8, 1000).batch(0, 300, 1).unwrap();
            assert_ne!(
                without_timestamp(&whole),
                without_timestamp(&other),
                "{kind:?}"
            );
        }
    }

    #[test]
    fn batches_match_the_schema() {
        for kind in ALL {
            let g = RowGenerator::new(kind, 0, 1000);
            for rows in [0, 1, 17, 1000] {
                let b = g.batch(5, rows, 1_700_000_000_000).unwrap();
                assert_eq!(b.num_rows(), rows);
                assert!(Arc::ptr_eq(&b.schema(), g.schema()));
                assert_eq!(b.schema().field(0).name(), "seq");
                assert_eq!(b.schema().fields().last().unwrap().name(), "timestamp");
            }
        }
    }

    #[test]
    fn orders_add_up_to_the_cent() {
        let g = RowGenerator::new(Kind::Orders, 42, 50);
        let b = g.batch(0, 2000, 0).unwrap();
        assert_eq!(strings(&b, "order_id").value(42), "ORD-00000042");
        let items: &ListArray = b.column_by_name("items").unwrap().as_list::<i32>();
        let totals = b
            .column_by_name("total")
            .unwrap()
            .as_primitive::<Float64Type>();
        for row in 0..b.num_rows() {
            let customer = strings(&b, "customer_id").value(row);
            let n: u64 = customer.strip_prefix("CUST-").unwrap().parse().unwrap();
            assert!(n < 50, "{customer} outside the pool");
            assert!(ORDER_STATUSES.contains(&strings(&b, "status").value(row)));

            let order = items.value(row);
            let order = order.as_struct();
            assert!((1..=5).contains(&order.len()));
            let qty = order.column(1).as_primitive::<Int64Type>();
            let price = order.column(2).as_primitive::<Float64Type>();
            let subtotal = order.column(3).as_primitive::<Float64Type>();
            let mut sum_cents = 0i64;
            for i in 0..order.len() {
                let cents = (price.value(i) * 100.0).round() as i64;
                assert_eq!(from_cents(cents), price.value(i), "price not in cents");
                assert_eq!(from_cents(cents * qty.value(i)), subtotal.value(i));
                sum_cents += (subtotal.value(i) * 100.0).round() as i64;
            }
            assert_eq!(from_cents(sum_cents), totals.value(row));
        }
    }

    #[test]
    fn log_levels_follow_their_weights() {
        let b = RowGenerator::new(Kind::Logs, 1, 1000)
            .batch(0, 10_000, 0)
            .unwrap();
        let levels = strings(&b, "level");
        let count = |l: &str| levels.iter().filter(|v| *v == Some(l)).count();
        // Deterministic for a fixed seed; the bounds only document the intent.
        assert!((6_000..7_600).contains(&count("INFO")));
        assert!((100..600).contains(&count("ERROR")));
        let messages = strings(&b, "message");
        assert!(
            messages
                .iter()
                .all(|m| m.is_some_and(|m| !m.contains("{}")))
        );
        assert!(strings(&b, "request_id").value(0).len() == 20);
        assert!(b.column_by_name("user_id").unwrap().null_count() > 0);
    }

    #[test]
    fn metrics_stay_plausible() {
        let b = RowGenerator::new(Kind::Metrics, 3, 1000)
            .batch(0, 5000, 0)
            .unwrap();
        for name in ["cpu_percent", "memory_percent", "disk_percent"] {
            let col = b
                .column_by_name(name)
                .unwrap()
                .as_primitive::<Float64Type>();
            assert!(
                col.values().iter().all(|v| (0.0..=100.0).contains(v)),
                "{name}"
            );
        }
        let rx = b
            .column_by_name("network_rx_bytes")
            .unwrap()
            .as_primitive::<Int64Type>();
        assert!(rx.values().iter().all(|&v| v > 0));
        assert_eq!(strings(&b, "host").value(0), "web-01");
        assert_eq!(strings(&b, "host").value(23), "kafka-04");
        assert_eq!(strings(&b, "host").value(24), "web-01");
    }

    #[test]
    fn click_sessions_keep_their_user_and_device() {
        let b = RowGenerator::new(Kind::Clicks, 9, 1000)
            .batch(0, 4096, 0)
            .unwrap();
        let mut seen = std::collections::HashMap::new();
        for row in 0..b.num_rows() {
            let key = (
                strings(&b, "user_id").value(row),
                strings(&b, "device").value(row),
            );
            let session = strings(&b, "session_id").value(row);
            assert_eq!(
                *seen.entry(session).or_insert(key),
                key,
                "{session} changed user"
            );
        }
        // ~16 events per session on average.
        assert!(
            seen.len() > 100 && seen.len() < 1000,
            "{} sessions",
            seen.len()
        );
    }

    #[test]
    fn numbers_are_padded_and_hex_is_fixed_width() {
        let mut b = StringBuilder::new();
        append_number(&mut b, "ORD-", 42, 8);
        append_number(&mut b, "CUST-", 123_456, 4);
        append_number(&mut b, "x", u64::MAX, 4);
        append_hex(&mut b, "req-", 0xab, 16);
        let a = b.finish();
        assert_eq!(a.value(0), "ORD-00000042");
        assert_eq!(a.value(1), "CUST-123456");
        assert_eq!(a.value(2), "x18446744073709551615");
        assert_eq!(a.value(3), "req-00000000000000ab");
    }

    #[test]
    fn weighted_choice_never_picks_a_zero_weight() {
        let mut rng = Rng::new(0);
        for _ in 0..10_000 {
            assert_ne!(rng.weighted(&[3, 0, 5]), 1);
        }
    }
}
