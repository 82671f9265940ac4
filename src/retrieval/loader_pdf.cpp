// PDF to text with poppler-cpp: one string per page in reading order, pages joined by blank lines,
// and the offset where each page begins kept so that chunks can cite their page.
#include <poppler/cpp/poppler-document.h>
#include <poppler/cpp/poppler-global.h>
#include <poppler/cpp/poppler-page.h>

#include <memory>
#include <mutex>

#include "retrieval/loaders.h"
#include "util/error.h"
#include "util/utf8.h"

namespace longqa::retrieval {

Document pdf_to_document(std::string_view bytes, const std::string& path) {
  // Poppler keeps global state (its error callback, font caches); one PDF is parsed at a time.
  static std::mutex mutex;
  const std::lock_guard lock(mutex);
  static const bool quiet = [] {
    poppler::set_debug_error_function([](const std::string&, void*) {}, nullptr);
    return true;
  }();
  (void)quiet;
  if (bytes.substr(0, 5) != "%PDF-") throw Error(path + ": not a PDF (no %PDF- header)");
  std::unique_ptr<poppler::document> doc(
      poppler::document::load_from_raw_data(bytes.data(), static_cast<int>(bytes.size())));
  if (!doc) throw Error(path + ": corrupt or unreadable PDF");
  if (doc->is_locked()) throw Error(path + ": encrypted PDF");
  Document d;
  d.name = path;
  const int pages = doc->pages();
  if (pages <= 0) throw Error(path + ": PDF has no pages");
  for (int i = 0; i < pages; ++i) {
    std::unique_ptr<poppler::page> page(doc->create_page(i));
    if (!d.text.empty()) d.text += "\n\n";
    d.page_starts.push_back(d.text.size());
    if (!page) continue;
    const poppler::byte_array utf8 = page->text(poppler::rectf(), poppler::page::non_raw_non_physical_layout).to_utf8();
    std::string text(utf8.begin(), utf8.end());
    for (char& c : text)
      if (c == '\f' || c == '\0') c = '\n';
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    d.text += text;
  }
  if (d.text.find_first_not_of(" \n\t\r") == std::string::npos)
    throw Error(path + ": PDF has no text layer (scanned pages need OCR, which longqa does not do)");
  if (const size_t bad = utf8::first_invalid(d.text); bad != std::string::npos)
    throw Error(path + ": PDF text is not valid UTF-8 (offset " + std::to_string(bad) + ")");
  return d;
}

}  // namespace longqa::retrieval
