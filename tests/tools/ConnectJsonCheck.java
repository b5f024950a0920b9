// Reads Kafka record values (one JSON document per line, stdin) through
// Apache Kafka Connect's own org.apache.kafka.connect.json.JsonConverter,
// configured as a value converter with schemas.enable=true, and prints one
// JSON line per input line (stdout) saying what Connect made of it:
//
//   {"schema": S, "value": V, "connect_json": E[, "warnings": [W...]]}
//   {"error": "message (and its causes)", "exception": "class"}
//
// S  the Connect schema Connect built: {"type": Connect's Schema.Type name
//    (int8 int16 int32 int64 float32 float64 boolean string bytes array map
//    struct), "optional", then "name", "version", "doc", "parameters",
//    "default" when set, "valueSchema" (array), "keySchema" + "valueSchema"
//    (map), "fields": [{"name", "schema"}] (struct)}; null for no schema.
// V  the Connect value: Struct -> object by field (stored value, defaults
//    not applied again); java.util.Date -> {"epoch_millis", "logical", "iso"};
//    BigDecimal -> string (toPlainString); byte[]/ByteBuffer -> base64;
//    List -> array; Map -> object with sorted keys when the key schema is
//    string, else [[key, value], ...] sorted by rendered key.
// E  the envelope the same converter writes back for that schema and value
//    (fromConnectData, verbatim): Connect's canonical form of the record.
//
// W  what a strict reading of the same line finds that Connect let pass
//    (JsonConverter is lenient: a string given for an int32 is read as 0,
//    "true" for a boolean as false, 3000000000 for an int32 wraps, payload
//    fields the schema lacks are dropped, an absent field is read as null or
//    its default, duplicate keys keep the last, text after the envelope and
//    leading zeros in numbers are accepted). Each is "path: what", e.g.
//    "payload.items[1].qty: int32 given as STRING". The key is there only
//    when there is something to say; a record fit for Connect has neither
//    "error" nor "warnings".
//
// Every decoded value is also checked with ConnectSchema.validateValue (and
// Struct.validate for a struct) because JsonConverter itself is lenient
// (see W). A record that fails gives an error line; the program goes on
// and exits 0.
//
// Bytes of a line are given to the converter as they are (no charset
// decoding); an empty line is an empty record value (an error under
// schemas.enable).
//
// Arguments: --topic=NAME (default "tributary"; JsonConverter ignores it),
// and KEY=VALUE converter settings that override the defaults
// schemas.enable=true decimal.format=BASE64 (for instance
// decimal.format=NUMERIC or replace.null.with.default=false).
//
// Run (Java 17 single-file source launch), or through scripts/connect-json-check:
//   java -cp "connect-json.jar:connect-api.jar:kafka-clients.jar:jackson-*.jar:slf4j-api.jar" \
//       tests/tools/ConnectJsonCheck.java < values.jsonl

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.databind.util.RawValue;
import org.apache.kafka.connect.data.ConnectSchema;
import org.apache.kafka.connect.data.Field;
import org.apache.kafka.connect.data.Schema;
import org.apache.kafka.connect.data.SchemaAndValue;
import org.apache.kafka.connect.data.Struct;
import org.apache.kafka.connect.json.JsonConverter;

import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

public class ConnectJsonCheck {
    private static final JsonNodeFactory NODES = JsonNodeFactory.instance;
    private static final ObjectMapper JSON = new ObjectMapper();
    // Plain JSON, no leniency: what the warnings are measured against.
    private static final ObjectMapper STRICT = JsonMapper.builder()
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .enable(DeserializationFeature.USE_BIG_DECIMAL_FOR_FLOATS)
            .build();

    public static void main(String[] args) throws IOException {
        String topic = "tributary";
        Map<String, Object> config = new HashMap<>();
        config.put("schemas.enable", "true");
        config.put("decimal.format", "BASE64");
        for (String arg : args) {
            if (arg.startsWith("--topic=")) {
                topic = arg.substring("--topic=".length());
            } else if (!arg.startsWith("-") && arg.indexOf('=') > 0) {
                int eq = arg.indexOf('=');
                config.put(arg.substring(0, eq), arg.substring(eq + 1));
            } else {
                System.err.println("usage: ConnectJsonCheck [--topic=NAME] [converter.key=value ...] < values.jsonl");
                System.exit(2);
            }
        }

        JsonConverter converter = new JsonConverter();
        converter.configure(config, false);

        PrintStream out = new PrintStream(new FileOutputStream(FileDescriptor.out), false, StandardCharsets.UTF_8);
        InputStream in = new BufferedInputStream(System.in, 1 << 16);
        byte[] line;
        while ((line = readLine(in)) != null) {
            out.println(JSON.writeValueAsString(check(converter, topic, line)));
            if (in.available() == 0)
                out.flush(); // nothing more to read yet: the reader gets its answer now
        }
        converter.close();
        out.flush();
    }

    /** One line without its '\n', or null at the end of input (a last line without '\n' counts). */
    private static byte[] readLine(InputStream in) throws IOException {
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        int b;
        while ((b = in.read()) != -1) {
            if (b == '\n')
                return buf.toByteArray();
            buf.write(b);
        }
        return buf.size() == 0 ? null : buf.toByteArray();
    }

    private static ObjectNode check(JsonConverter converter, String topic, byte[] record) {
        ObjectNode result = NODES.objectNode();
        SchemaAndValue data;
        try {
            data = converter.toConnectData(topic, record);
            Schema schema = data.schema();
            Object value = data.value();
            if (value instanceof Struct struct)
                struct.validate();
            if (schema != null)
                ConnectSchema.validateValue(schema, value);
        } catch (Exception | StackOverflowError e) {
            return error(e, "");
        }

        byte[] again;
        try {
            again = converter.fromConnectData(topic, data.schema(), data.value());
        } catch (Exception | StackOverflowError e) {
            return error(e, "read, but writing it back failed: ");
        }
        result.set("schema", schema(data.schema()));
        result.set("value", value(data.schema(), data.value()));
        if (again == null)
            result.putNull("connect_json");
        else
            result.putRawValue("connect_json", new RawValue(new String(again, StandardCharsets.UTF_8)));
        List<String> warnings = strict(record, data.schema());
        if (!warnings.isEmpty()) {
            ArrayNode w = result.putArray("warnings");
            warnings.forEach(w::add);
        }
        return result;
    }

    // ---- the strict reading ----

    private static List<String> strict(byte[] record, Schema schema) {
        List<String> warnings = new ArrayList<>();
        JsonNode envelope;
        try {
            envelope = STRICT.readTree(record);
        } catch (JsonProcessingException e) {
            warnings.add("record: not strict JSON: " + e.getOriginalMessage());
            return warnings;
        } catch (IOException e) {
            warnings.add("record: not strict JSON: " + e.getMessage());
            return warnings;
        }
        if (envelope != null && envelope.has("payload"))
            walk(schema, envelope.get("payload"), "payload", warnings);
        return warnings;
    }

    private static void walk(Schema schema, JsonNode node, String path, List<String> w) {
        if (schema == null)
            return;
        if (node == null || node.isMissingNode()) {
            w.add(path + ": absent, Connect reads it as " + (schema.defaultValue() != null ? "its default" : "null"));
            return;
        }
        if (node.isNull()) {
            if (schema.defaultValue() != null)
                w.add(path + ": null, Connect reads it as its default");
            return;
        }
        String name = schema.name() == null ? "" : schema.name();
        String what = name.isEmpty() ? schema.type().getName() : name.substring(name.lastIndexOf('.') + 1);
        String given = what + " given as " + node.getNodeType() + " " + abbreviate(node);
        switch (name) {
            case "org.apache.kafka.connect.data.Decimal" -> {
                if (!node.isTextual() && !node.isNumber())
                    w.add(path + ": " + given);
                return;
            }
            case "org.apache.kafka.connect.data.Date", "org.apache.kafka.connect.data.Time" -> {
                if (!node.isIntegralNumber() || !node.canConvertToInt())
                    w.add(path + ": " + given);
                return;
            }
            case "org.apache.kafka.connect.data.Timestamp" -> {
                if (!node.isIntegralNumber() || !node.canConvertToLong())
                    w.add(path + ": " + given);
                return;
            }
            default -> { }
        }
        switch (schema.type()) {
            case INT8 -> integral(node, Byte.MIN_VALUE, Byte.MAX_VALUE, path, given, w);
            case INT16 -> integral(node, Short.MIN_VALUE, Short.MAX_VALUE, path, given, w);
            case INT32 -> integral(node, Integer.MIN_VALUE, Integer.MAX_VALUE, path, given, w);
            case INT64 -> integral(node, Long.MIN_VALUE, Long.MAX_VALUE, path, given, w);
            case FLOAT32 -> {
                if (!node.isNumber() || Float.isInfinite(node.floatValue()))
                    w.add(path + ": " + given);
            }
            case FLOAT64 -> {
                if (!node.isNumber() || Double.isInfinite(node.doubleValue()))
                    w.add(path + ": " + given);
            }
            case BOOLEAN -> {
                if (!node.isBoolean())
                    w.add(path + ": " + given);
            }
            case STRING, BYTES -> {
                if (!node.isTextual())
                    w.add(path + ": " + given);
            }
            case ARRAY -> {
                if (!node.isArray()) {
                    w.add(path + ": " + given);
                    return;
                }
                for (int i = 0; i < node.size(); i++)
                    walk(schema.valueSchema(), node.get(i), path + "[" + i + "]", w);
            }
            case MAP -> {
                if (schema.keySchema().type() == Schema.Type.STRING) {
                    if (!node.isObject()) {
                        w.add(path + ": " + given);
                        return;
                    }
                    for (Map.Entry<String, JsonNode> e : node.properties()) {
                        walk(schema.valueSchema(), e.getValue(), path + "[" + JSON.valueToTree(e.getKey()) + "]", w);
                    }
                } else {
                    if (!node.isArray()) {
                        w.add(path + ": " + given);
                        return;
                    }
                    for (int i = 0; i < node.size(); i++) {
                        JsonNode pair = node.get(i);
                        if (!pair.isArray() || pair.size() != 2) {
                            w.add(path + "[" + i + "]: map entry given as " + pair.getNodeType() + " " + abbreviate(pair));
                            continue;
                        }
                        walk(schema.keySchema(), pair.get(0), path + "[" + i + "][0]", w);
                        walk(schema.valueSchema(), pair.get(1), path + "[" + i + "][1]", w);
                    }
                }
            }
            case STRUCT -> {
                if (!node.isObject()) {
                    w.add(path + ": " + given);
                    return;
                }
                for (Field field : schema.fields())
                    walk(field.schema(), node.get(field.name()), path + "." + field.name(), w);
                for (Map.Entry<String, JsonNode> e : node.properties()) {
                    if (schema.field(e.getKey()) == null)
                        w.add(path + "." + e.getKey() + ": not in the schema, Connect drops it");
                }
            }
        }
    }

    private static void integral(JsonNode node, long min, long max, String path, String given, List<String> w) {
        if (!node.isIntegralNumber()) {
            w.add(path + ": " + given);
            return;
        }
        BigInteger v = node.bigIntegerValue();
        if (v.compareTo(BigInteger.valueOf(min)) < 0 || v.compareTo(BigInteger.valueOf(max)) > 0)
            w.add(path + ": " + given + ", out of range");
    }

    private static String abbreviate(JsonNode node) {
        String s = node.toString();
        return s.length() <= 40 ? s : s.substring(0, 37) + "...";
    }

    private static ObjectNode error(Throwable e, String prefix) {
        StringBuilder message = new StringBuilder(prefix).append(e.getMessage());
        for (Throwable cause = e.getCause(); cause != null && cause != cause.getCause(); cause = cause.getCause())
            message.append(" / caused by ").append(cause.getClass().getName()).append(": ").append(cause.getMessage());
        ObjectNode result = NODES.objectNode();
        result.put("error", message.toString());
        result.put("exception", e.getClass().getName());
        return result;
    }

    private static JsonNode schema(Schema schema) {
        if (schema == null)
            return NODES.nullNode();
        ObjectNode out = NODES.objectNode();
        out.put("type", schema.type().getName());
        out.put("optional", schema.isOptional());
        if (schema.name() != null)
            out.put("name", schema.name());
        if (schema.version() != null)
            out.put("version", schema.version());
        if (schema.doc() != null)
            out.put("doc", schema.doc());
        if (schema.parameters() != null) {
            ObjectNode parameters = out.putObject("parameters");
            new TreeMap<>(schema.parameters()).forEach(parameters::put);
        }
        if (schema.defaultValue() != null)
            out.set("default", value(schema, schema.defaultValue()));
        switch (schema.type()) {
            case ARRAY -> out.set("valueSchema", schema(schema.valueSchema()));
            case MAP -> {
                out.set("keySchema", schema(schema.keySchema()));
                out.set("valueSchema", schema(schema.valueSchema()));
            }
            case STRUCT -> {
                ArrayNode fields = out.putArray("fields");
                for (Field field : schema.fields()) {
                    ObjectNode f = fields.addObject();
                    f.put("name", field.name());
                    f.set("schema", schema(field.schema()));
                }
            }
            default -> { }
        }
        return out;
    }

    private static JsonNode value(Schema schema, Object value) {
        if (value == null)
            return NODES.nullNode();
        if (value instanceof Struct struct) {
            ObjectNode out = NODES.objectNode();
            for (Field field : struct.schema().fields())
                out.set(field.name(), value(field.schema(), struct.getWithoutDefault(field.name())));
            return out;
        }
        if (value instanceof java.util.Date date) {
            ObjectNode out = NODES.objectNode();
            out.put("epoch_millis", date.getTime());
            out.put("logical", schema == null ? null : schema.name());
            out.put("iso", Instant.ofEpochMilli(date.getTime()).toString());
            return out;
        }
        if (value instanceof BigDecimal decimal)
            return NODES.textNode(decimal.toPlainString());
        if (value instanceof byte[] bytes)
            return NODES.textNode(Base64.getEncoder().encodeToString(bytes));
        if (value instanceof ByteBuffer buffer) {
            byte[] bytes = new byte[buffer.remaining()];
            buffer.duplicate().get(bytes);
            return NODES.textNode(Base64.getEncoder().encodeToString(bytes));
        }
        if (value instanceof Collection<?> list) {
            Schema elements = schema == null ? null : schema.valueSchema();
            ArrayNode out = NODES.arrayNode();
            for (Object element : list)
                out.add(value(elements, element));
            return out;
        }
        if (value instanceof Map<?, ?> map) {
            Schema keys = schema == null ? null : schema.keySchema();
            Schema values = schema == null ? null : schema.valueSchema();
            boolean stringKeys = map.keySet().stream().allMatch(k -> k instanceof String)
                    && (keys == null || keys.type() == Schema.Type.STRING);
            if (stringKeys) {
                ObjectNode out = NODES.objectNode();
                new TreeMap<Object, Object>(map).forEach((k, v) -> out.set((String) k, value(values, v)));
                return out;
            }
            List<ArrayNode> pairs = new ArrayList<>();
            map.forEach((k, v) -> pairs.add(NODES.arrayNode().add(value(keys, k)).add(value(values, v))));
            pairs.sort((a, b) -> a.get(0).toString().compareTo(b.get(0).toString()));
            ArrayNode out = NODES.arrayNode();
            out.addAll(pairs);
            return out;
        }
        if (value instanceof Byte b)
            return NODES.numberNode(b);
        if (value instanceof Short s)
            return NODES.numberNode(s);
        if (value instanceof Integer i)
            return NODES.numberNode(i);
        if (value instanceof Long l)
            return NODES.numberNode(l);
        if (value instanceof Float f)
            return NODES.numberNode(f);
        if (value instanceof Double d)
            return NODES.numberNode(d);
        if (value instanceof Boolean b)
            return NODES.booleanNode(b);
        if (value instanceof CharSequence s)
            return NODES.textNode(s.toString());
        ObjectNode out = NODES.objectNode();
        out.put("unrendered_class", value.getClass().getName());
        out.put("toString", value.toString());
        return out;
    }
}
