// HTML to text with libxml2's forgiving HTML parser: the visible text in document order, scripts,
// styles and other non-content elements dropped, whitespace collapsed as a browser would, and
// block elements separated by line breaks so that the chunker finds paragraph ends.
#include <libxml/HTMLparser.h>
#include <libxml/tree.h>

#include <cstring>
#include <memory>

#include "retrieval/loaders.h"
#include "util/error.h"
#include "util/utf8.h"

namespace longqa::retrieval {
namespace {

bool one_of(const char* name, std::initializer_list<const char*> names) {
  for (const char* n : names)
    if (std::strcmp(name, n) == 0) return true;
  return false;
}

class TextBuilder {
 public:
  // Asks for at least `lines` line breaks before the next text (1: new line, 2: new paragraph).
  void brk(int lines) { pending_ = std::max(pending_, lines); }

  void text(std::string_view s, bool preformatted) {
    for (char c : s) {
      const bool space = c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
      if (space && !preformatted) {
        space_ = true;
        continue;
      }
      if (!out_.empty() && pending_ > 0) {
        while (!out_.empty() && out_.back() == ' ') out_.pop_back();
        out_.append(static_cast<size_t>(pending_), '\n');
      } else if (space_ && !out_.empty() && out_.back() != '\n' && out_.back() != ' ') {
        out_ += ' ';
      }
      pending_ = 0;
      space_ = false;
      out_ += c;
    }
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
  int pending_ = 0;
  bool space_ = false;
};

void walk(const xmlNode* node, TextBuilder& out, bool pre) {
  for (; node; node = node->next) {
    if (node->type == XML_TEXT_NODE || node->type == XML_CDATA_SECTION_NODE) {
      if (node->content) out.text(reinterpret_cast<const char*>(node->content), pre);
      continue;
    }
    if (node->type != XML_ELEMENT_NODE || !node->name) continue;
    const char* name = reinterpret_cast<const char*>(node->name);
    if (one_of(name, {"script", "style", "noscript", "template", "svg", "canvas", "iframe", "object", "head"})) {
      // The title is the one part of <head> worth keeping.
      if (std::strcmp(name, "head") == 0)
        for (const xmlNode* c = node->children; c; c = c->next)
          if (c->type == XML_ELEMENT_NODE && std::strcmp(reinterpret_cast<const char*>(c->name), "title") == 0) {
            walk(c->children, out, false);
            out.brk(2);
          }
      continue;
    }
    const bool paragraph = one_of(name, {"p", "div", "section", "article", "main", "header", "footer", "nav", "aside",
                                         "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "table", "ul",
                                         "ol", "dl", "figure", "form", "fieldset", "address", "hr"});
    const bool line = one_of(name, {"br", "li", "tr", "dt", "dd", "caption", "figcaption", "option"});
    if (paragraph) out.brk(2);
    if (line) out.brk(1);
    if (one_of(name, {"td", "th"})) out.text(" ", false);
    walk(node->children, out, pre || std::strcmp(name, "pre") == 0 || std::strcmp(name, "textarea") == 0);
    if (paragraph) out.brk(2);
    if (line) out.brk(1);
  }
}

}  // namespace

std::string html_to_text(std::string_view bytes, const std::string& path) {
  if (bytes.find('\0') != std::string_view::npos) throw Error(path + ": binary file (contains NUL bytes)");
  // Valid UTF-8 is read as UTF-8 whatever the page claims; otherwise libxml2 follows the <meta> charset.
  const char* encoding = utf8::first_invalid(bytes) == std::string_view::npos ? "UTF-8" : nullptr;
  const int options = HTML_PARSE_RECOVER | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING | HTML_PARSE_NONET | HTML_PARSE_NOBLANKS;
  std::unique_ptr<xmlDoc, decltype(&xmlFreeDoc)> doc(
      htmlReadMemory(bytes.data(), static_cast<int>(bytes.size()), path.c_str(), encoding, options), &xmlFreeDoc);
  if (!doc) throw Error(path + ": not parseable as HTML");
  TextBuilder out;
  walk(xmlDocGetRootElement(doc.get()), out, false);
  std::string text = out.take();
  if (const size_t bad = utf8::first_invalid(text); bad != std::string::npos)
    throw Error(path + ": HTML text is not valid UTF-8 after decoding (offset " + std::to_string(bad) + ")");
  return text;
}

}  // namespace longqa::retrieval
