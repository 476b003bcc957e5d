#!/usr/bin/env python3
"""kafka_gen.py -- generate minikora's Kafka codec tables from Apache Kafka's JSON message specs.

Usage: kafka_gen.py SPEC_DIR OUT_DIR      (run through `make regen SPEC_DIR=...`)

Writes OUT_DIR/kafka_gen.h and OUT_DIR/kafka_gen.c.  The codec is table driven: for every
message (request, response, header) we emit
  * C struct types holding every field of every version (one struct per spec struct), and
  * descriptor tables (field type, offsetof, present/nullable/tagged/flexible version ranges,
    tag, default) that the generic encoder/decoder in codec.c walks.
Data rather than code keeps the generated file small and the codec in one audited place.

Only the schema is taken from the specs; their prose ("about" texts, comments) is not copied.
"""
import json
import os
import re
import sys

OPEN = 32767  # "N+" upper bound

PRIM = {
    "bool": ("MK_PT_BOOL", "bool"),
    "int8": ("MK_PT_INT8", "int8_t"),
    "int16": ("MK_PT_INT16", "int16_t"),
    "uint16": ("MK_PT_UINT16", "uint16_t"),
    "int32": ("MK_PT_INT32", "int32_t"),
    "uint32": ("MK_PT_UINT32", "uint32_t"),
    "int64": ("MK_PT_INT64", "int64_t"),
    "float64": ("MK_PT_FLOAT64", "double"),
    "string": ("MK_PT_STRING", "mk_str_t"),
    "bytes": ("MK_PT_BYTES", "mk_bytes_t"),
    "records": ("MK_PT_RECORDS", "mk_bytes_t"),
    "uuid": ("MK_PT_UUID", "mk_uuid_t"),
}


def load_spec(path):
    """Spec files are JSON with full-line // comments."""
    lines = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.lstrip().startswith("//"):
                continue
            lines.append(line)
    return json.loads("".join(lines))


def vrange(s, what):
    """Parse a version spec: "none", "N", "N+", "N-M" -> (min, max) or (-1, -1) for none."""
    if s is None or s == "none":
        return (-1, -1)
    s = s.strip()
    if s.endswith("+"):
        return (int(s[:-1]), OPEN)
    if "-" in s:
        a, b = s.split("-")
        return (int(a), int(b))
    return (int(s), int(s))


def parse_default(ftype, d):
    """Return (int_default, null_default) for a field's declared default."""
    if d is None:
        return (0, False)
    if isinstance(d, bool):
        return (1 if d else 0, False)
    if isinstance(d, int):
        return (d, False)
    d = str(d).strip()
    if d == "null":
        return (0, True)
    if d in ("true", "false"):
        return (1 if d == "true" else 0, False)
    if ftype in ("string", "bytes", "records"):
        if d == "":
            return (0, False)
        raise SystemExit("string defaults other than empty/null are not supported: %r" % d)
    return (int(d, 0), False)


class Gen:
    def __init__(self):
        self.structs = []      # (cname, fields) in definition order (children first)
        self.msgs = []

    def cident(self, s):
        return re.sub(r"[^A-Za-z0-9_]", "_", s)

    def gen_struct(self, msgname, sname, fields, named, flex_default, is_top):
        """Emit (recursively) the struct named sname; returns its C type base name."""
        cname = "mk_%s_t" % msgname if is_top else "mk_%s_%s_t" % (msgname, sname)
        out = []
        for f in fields:
            fname = f["name"]
            ftype = f["type"]
            vmin, vmax = vrange(f.get("versions"), "versions")
            nmin, nmax = vrange(f.get("nullableVersions"), "nullable")
            tmin, tmax = vrange(f.get("taggedVersions"), "tagged")
            tag = int(f.get("tag", -1))
            fmin = -2  # -2: follow the message
            if "flexibleVersions" in f:
                fv = vrange(f["flexibleVersions"], "flex")
                fmin = fv[0] if fv[0] >= 0 else OPEN
            dint, dnull = parse_default(ftype.lstrip("[]"), f.get("default"))
            is_array = ftype.startswith("[]")
            base = ftype[2:] if is_array else ftype
            sub = None
            if base in PRIM:
                pt, ct = PRIM[base]
            else:
                # A struct: inline fields, or defined elsewhere in this message / commonStructs.
                sfields = f.get("fields")
                if sfields is None:
                    if base not in named:
                        raise SystemExit("%s: unknown type %s" % (msgname, base))
                    sfields = named[base]
                sub = self.gen_struct_once(msgname, base, sfields, named, flex_default)
                pt, ct = "MK_PT_STRUCT", sub
            out.append(dict(name=fname, pt=pt, ct=ct, array=is_array, vmin=vmin, vmax=vmax,
                            nmin=nmin, nmax=nmax, tmin=tmin, tmax=tmax, tag=tag, fmin=fmin,
                            dint=dint, dnull=dnull, sub=sub))
        self.structs.append((cname, out))
        return cname

    def gen_struct_once(self, msgname, sname, fields, named, flex_default):
        cname = "mk_%s_%s_t" % (msgname, sname)
        for c, _ in self.structs:
            if c == cname:
                return cname
        return self.gen_struct(msgname, sname, fields, named, flex_default, False)

    def collect_named(self, fields, named):
        for f in fields:
            if "fields" in f:
                base = f["type"].lstrip("[]")
                named.setdefault(base, f["fields"])
                self.collect_named(f["fields"], named)

    def add_message(self, spec):
        name = spec["name"]
        kind = spec["type"]
        if kind not in ("request", "response", "header", "data"):
            return
        vmin, vmax = vrange(spec.get("validVersions"), "valid")
        fmin, _ = vrange(spec.get("flexibleVersions"), "flex")
        if fmin < 0:
            fmin = OPEN
        named = {}
        for cs in spec.get("commonStructs", []):
            named[cs["name"]] = cs["fields"]
            self.collect_named(cs["fields"], named)
        self.collect_named(spec.get("fields", []), named)
        cname = self.gen_struct(name, name, spec.get("fields", []), named, fmin, True)
        self.msgs.append(dict(name=name, kind=kind, api_key=spec.get("apiKey", -1),
                              vmin=vmin, vmax=vmax, fmin=fmin, cname=cname))

    # ------------------------------------------------------------------ output
    def ctype_of(self, f):
        return f["ct"]

    def write(self, outdir):
        h = []
        h.append("/* kafka_gen.h -- GENERATED by src/proto/gen/kafka_gen.py from Apache Kafka's\n"
                 " * message specs.  DO NOT EDIT; run `make regen`.\n"
                 " * One C struct per spec struct; field names keep the spec's spelling.  Arrays are\n"
                 " * {items, count} with count -1 for null; strings and bytes are mk_str_t/mk_bytes_t. */")
        h.append("#ifndef MK_KAFKA_GEN_H\n#define MK_KAFKA_GEN_H\n")
        h.append('#include "proto/codec.h"\n')
        for cname, fields in self.structs:
            tag = cname[:-2] + "_s"
            h.append("typedef struct %s {" % tag)
            if not fields:
                h.append("    char _unused;")
            for f in fields:
                if f["array"]:
                    h.append("    struct { %s *items; int32_t count; } %s;" % (f["ct"], f["name"]))
                else:
                    h.append("    %s %s;" % (f["ct"], f["name"]))
            h.append("} %s;\n" % cname)
        h.append("/* Descriptor of every struct, named mk_pdesc_<Message>[_<Struct>]. */")
        for cname, fields in self.structs:
            h.append("extern const mk_pstruct_t mk_pdesc_%s;" % cname[3:-2])
        for m in self.msgs:
            h.append("extern const mk_pmsg_t mk_pmsg_%s;" % m["name"])
        h.append("\n/* Every generated message, for lookups and the round-trip tests. */")
        h.append("extern const mk_pmsg_t *const mk_pmsg_all[];")
        h.append("extern const int mk_pmsg_all_count;")
        h.append("\n/* API keys, named as the specs name the request (without the suffix). */")
        h.append("enum {")
        for m in self.msgs:
            if m["kind"] == "request":
                h.append("    MK_API_%s = %d," % (m["name"][:-len("Request")], m["api_key"]))
        h.append("    MK_API__MAX = %d\n};" % (max(m["api_key"] for m in self.msgs) + 1))
        h.append("\n#endif /* MK_KAFKA_GEN_H */")

        c = []
        c.append("/* kafka_gen.c -- GENERATED by src/proto/gen/kafka_gen.py from Apache Kafka's\n"
                 " * message specs.  DO NOT EDIT; run `make regen`.  Descriptor tables walked by\n"
                 " * the generic codec in codec.c. */")
        c.append('#include <stddef.h>\n#include "proto/kafka_gen.h"\n')
        for cname, fields in self.structs:
            base = cname[:-2]
            if fields:
                c.append("static const mk_pfield_t f_%s[] = {" % base)
                for f in fields:
                    elem = f["pt"]
                    pt = "MK_PT_ARRAY" if f["array"] else f["pt"]
                    sub = "&mk_pdesc_%s" % f["sub"][3:-2] if f["sub"] else "NULL"
                    c.append('    {"%s", offsetof(%s, %s), %s, %s, %d, %d, %d, %d, %d, %d, %d, %d, %dLL, %d, %s},'
                             % (f["name"], cname, f["name"], pt, elem, f["vmin"], f["vmax"], f["nmin"],
                                f["nmax"], f["tmin"], f["tmax"], f["tag"], f["fmin"], f["dint"],
                                1 if f["dnull"] else 0, sub))
                c.append("};")
            c.append('const mk_pstruct_t mk_pdesc_%s = {"%s", sizeof(%s), %d, %s};'
                     % (base[3:], base[3:], cname, len(fields), ("f_%s" % base) if fields else "NULL"))
        c.append("")
        for m in self.msgs:
            kinds = {"request": "MK_PKIND_REQUEST", "response": "MK_PKIND_RESPONSE",
                     "header": "MK_PKIND_HEADER", "data": "MK_PKIND_DATA"}
            c.append('const mk_pmsg_t mk_pmsg_%s = {"%s", %d, %s, %d, %d, %d, &mk_pdesc_%s};'
                     % (m["name"], m["name"], m["api_key"], kinds[m["kind"]], m["vmin"], m["vmax"],
                        m["fmin"], m["cname"][3:-2]))
        c.append("\nconst mk_pmsg_t *const mk_pmsg_all[] = {")
        for m in self.msgs:
            c.append("    &mk_pmsg_%s," % m["name"])
        c.append("};")
        c.append("const int mk_pmsg_all_count = %d;" % len(self.msgs))

        with open(os.path.join(outdir, "kafka_gen.h"), "w") as f:
            f.write("\n".join(h) + "\n")
        with open(os.path.join(outdir, "kafka_gen.c"), "w") as f:
            f.write("\n".join(c) + "\n")


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    specdir, outdir = sys.argv[1], sys.argv[2]
    g = Gen()
    for fn in sorted(os.listdir(specdir)):
        if fn.endswith(".json"):
            g.add_message(load_spec(os.path.join(specdir, fn)))
    g.write(outdir)
    print("kafka_gen: %d messages, %d structs" % (len(g.msgs), len(g.structs)))


if __name__ == "__main__":
    main()
