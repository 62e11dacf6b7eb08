#!/usr/bin/env bash
# t4040 - rag: a PDF (two pages, written here with exact xref offsets)
# is ingested from content_base64 through poppler; its text is found,
# with the page number in the provenance; a damaged PDF is refused.
. "$(dirname "$0")/lib.sh"
export OMNI_SERVICES=rag
omni_setup
start_redis
omni_start_broker
omni_wait_ready 20 || fail "broker not ready"

# make_pdf FILE: a minimal PDF 1.4, Helvetica text on two pages.
make_pdf() {
    /usr/bin/python3 - "$1" <<'PY'
import sys
pages = ["Photosynthesis turns light into chemical energy.",
         "Mitochondria are the powerhouse of the cell."]
objs = ["<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R 5 0 R] /Count 2 >>"]
for i, text in enumerate(pages):
    content = "BT /F1 12 Tf 20 50 Td (%s) Tj ET" % text
    objs.append("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 400 100] "
                "/Contents %d 0 R /Resources << /Font << /F1 7 0 R >> >> >>"
                % (4 + 2 * i))
    objs.append("<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content))
objs.append("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
out = b"%PDF-1.4\n"
offs = []
for n, o in enumerate(objs, 1):
    offs.append(len(out))
    out += b"%d 0 obj\n%s\nendobj\n" % (n, o.encode())
xref = len(out)
out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
for o in offs:
    out += b"%010d 00000 n \n" % o
out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
open(sys.argv[1], "wb").write(out)
PY
}
make_pdf "$OMNI_TEST_DIR/bio.pdf" || fail "cannot write the PDF"
b64=$(base64 -w0 "$OMNI_TEST_DIR/bio.pdf")
size=$(stat -c %s "$OMNI_TEST_DIR/bio.pdf")

out=$(rag ingest '{"collection":"papers","documents":[{"id":"bio.pdf","content_base64":"'"$b64"'","content_type":"application/pdf","metadata":{"source":"test"}}]}') ||
    fail "PDF ingest failed: $out"
echo "$out" | json_py 'assert j["ingested"] == ["bio.pdf"], j' || fail "ingest reply: $out"

out=$(rag query '{"collection":"papers","query":"powerhouse of the cell","top_k":1}') ||
    fail "query failed"
echo "$out" | json_py 'r = j["results"][0]
assert r["document_id"] == "bio.pdf", r
assert "Mitochondria are the powerhouse of the cell." in r["text"], r
assert r["page"] in (1, 2) and r["metadata"] == {"source": "test"}, r' ||
    fail "query result: $out"

# With small chunks each page is its own chunk, with its own page.
out=$(rag ingest '{"collection":"papers","chunking":{"size":60,"overlap":0},"documents":[{"id":"bio.pdf","content_base64":"'"$b64"'","content_type":"application/pdf","metadata":{"source":"test"}}]}')
echo "$out" | json_py 'assert j["ingested"] == ["bio.pdf"] and j["chunks"] == 2, j' ||
    fail "re-chunked ingest: $out"
out=$(rag query '{"collection":"papers","query":"photosynthesis light energy","mode":"bm25","top_k":2}')
echo "$out" | json_py 'r = j["results"]
assert r[0]["page"] == 1 and r[0]["text"].startswith("Photosynthesis"), r
assert len(r) == 1, r' || fail "page 1: $out"
out=$(rag query '{"collection":"papers","query":"mitochondria","mode":"bm25","top_k":2}')
echo "$out" | json_py 'r = j["results"]
assert r[0]["page"] == 2 and r[0]["chunk_id"] == 1, r' || fail "page 2: $out"

rag list '{"collection":"papers"}' | json_py 'd = j["documents"][0]
assert d["content_type"] == "application/pdf" and d["bytes"] == '"$size"', d
assert d["chunks"] == 2, d' || fail "list"

# A truncated PDF is refused, and the stored version stays.
bad=$(head -c 200 "$OMNI_TEST_DIR/bio.pdf" | base64 -w0)
if out=$(rag ingest '{"collection":"papers","documents":[{"id":"bio.pdf","content_base64":"'"$bad"'","content_type":"application/pdf"}]}' 2>&1); then
    fail "damaged PDF accepted: $out"
fi
[[ "$out" == *"BAD_REQUEST: "*"PDF"* ]] || fail "damaged PDF: $out"
rag list '{"collection":"papers"}' | json_py 'assert j["documents"][0]["chunks"] == 2, j' ||
    fail "damaged PDF replaced the stored one"
omni_stop || fail "broker exit status $?"
omni_check_log
echo "ok"
