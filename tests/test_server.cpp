// `longqa serve` as a real process: the official OpenAI Node client (tests/node/client.mjs) drives
// it, then hostile and malformed requests from a C++ HTTP client.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <regex>
#include <thread>

#include "test_util.h"

namespace longqa {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

// A server on a free port, killed at scope exit.
class ServerProcess {
 public:
  explicit ServerProcess(const std::string& args) {
    const std::string cmd = "exec " + std::string(LONGQA_BIN) + " serve --port 0 " + args + " >" + log_.file("out") + " 2>&1";
    pid_ = fork();
    if (pid_ == 0) {
      execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    const std::regex listening("on http://[0-9.]+:([0-9]+)");
    for (int i = 0; i < 600 && port_ == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      std::ifstream in(log_.file("out"));
      const std::string out((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      std::smatch m;
      if (std::regex_search(out, m, listening)) port_ = std::stoi(m[1]);
    }
  }
  ~ServerProcess() {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  test::TempDir log_;
  pid_t pid_ = -1;
  int port_ = 0;
};

TEST(Server, TheOfficialOpenAiClientWorksUnchanged) {
  const std::string modules = std::string(LONGQA_SOURCE_DIR) + "/tests/node/node_modules/openai";
  ASSERT_TRUE(fs::exists(modules)) << "run scripts/setup.sh: it installs the openai npm package into tests/node";
  test::TempDir dir;
  const std::string doc = dir.file("walrus.txt");
  std::ofstream(doc) << "The walrus lives in the Arctic. Walruses eat clams and other molluscs.\n";
  ServerProcess server("-m " + test::model_dir("tiny-chatqa2") + " --parallel 4 --ctx 4096 --api-key sekret");
  ASSERT_GT(server.port(), 0) << "the server did not start";
  const std::string cmd = "node " + std::string(LONGQA_SOURCE_DIR) + "/tests/node/client.mjs " + server.url() + " sekret " +
                          doc + " >" + dir.file("client") + " 2>&1";
  const int rc = std::system(cmd.c_str());
  std::ifstream in(dir.file("client"));
  const std::string out((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out.find("FAIL"), std::string::npos) << out;
  EXPECT_NE(out.find("ok   the API key is enforced"), std::string::npos) << out;
}

TEST(Server, BadRequestsGetOneClearJsonError) {
  test::TempDir dir;
  ServerProcess server("-m " + test::model_dir("tiny-chatqa2") + " --ctx 512 --max-body 65536 --index " + dir.file("index"));
  ASSERT_GT(server.port(), 0);
  httplib::Client c("127.0.0.1", server.port());
  auto post = [&](const std::string& path, const std::string& body) {
    const auto r = c.Post(path.c_str(), body, "application/json");
    EXPECT_TRUE(r) << path;
    return r ? std::make_pair(r->status, json::parse(r->body, nullptr, false)) : std::make_pair(0, json());
  };
  auto expect_error = [&](const std::string& path, const std::string& body, int status, const std::string& needle) {
    const auto [code, j] = post(path, body);
    EXPECT_EQ(code, status) << body;
    ASSERT_TRUE(j.is_object() && j.contains("error")) << body;
    EXPECT_NE(j["error"]["message"].get<std::string>().find(needle), std::string::npos) << j.dump();
    EXPECT_EQ(j["error"]["code"], status);
  };
  expect_error("/v1/chat/completions", "{not json", 400, "not valid JSON");
  expect_error("/v1/chat/completions", "{}", 400, "'messages'");
  expect_error("/v1/chat/completions", R"({"messages": [{"role": "tool", "content": "x"}]})", 400, "role 'tool'");
  expect_error("/v1/chat/completions", R"({"messages": [{"role": "assistant", "content": "x"}]})", 400, "last message");
  expect_error("/v1/chat/completions", R"({"messages": [{"role": "user", "content": "x"}], "n": 2})", 400, "n = 1");
  expect_error("/v1/chat/completions", R"({"messages": [{"role": "user", "content": "x"}], "temperature": 9})", 400, "temperature");
  expect_error("/v1/chat/completions", R"({"messages": [{"role": "user", "content": "x"}], "max_tokens": 600})", 400,
               "exceed the context of 512");
  expect_error("/v1/chat/completions",
               R"({"messages": [{"role": "user", "content": "x"}], "longqa": {"documents": ["/nonexistent.txt"]}})", 400,
               "/nonexistent.txt");
  expect_error("/v1/chat/completions",
               R"({"messages": [{"role": "user", "content": "x"}], "longqa": {"index": true, "chunk_order": "middle"}})", 400,
               "best-first or best-last");
  expect_error("/v1/completions", R"({"prompt": ""})", 400, "'prompt'");
  expect_error("/v1/embeddings", R"({"input": [1, 2]})", 400, "'input'");
  expect_error("/v1/chat/completions", std::string(70000, ' '), 413, "too large");
  const auto missing = c.Get("/v2/nothing");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);

  // Tokenize and detokenize are inverse; documents posted as text are searchable through the index.
  const auto [t_code, tokens] = post("/tokenize", R"({"content": "Hello, walrus!"})");
  ASSERT_EQ(t_code, 200);
  const auto [d_code, text] = post("/detokenize", json{{"tokens", tokens["tokens"]}}.dump());
  ASSERT_EQ(d_code, 200);
  EXPECT_EQ(text["content"], "Hello, walrus!");
  const auto [a_code, added] = post("/v1/documents", R"({"text": "The narwhal has a long tusk.", "name": "narwhal.txt"})");
  ASSERT_EQ(a_code, 200) << added.dump();
  EXPECT_EQ(added["files_added"], 1);
  const auto [q_code, answer] = post("/v1/chat/completions",
                                     R"({"messages": [{"role": "user", "content": "What has a long tusk?"}], "max_tokens": 2,
                                         "temperature": 0, "longqa": {"index": true, "mode": "rag", "k": 1, "chunk_order": "best-last"}})");
  ASSERT_EQ(q_code, 200) << answer.dump();
  EXPECT_EQ(answer["longqa"]["route"], "rag");
  ASSERT_EQ(answer["longqa"]["citations"].size(), 1u);
  EXPECT_NE(answer["longqa"]["citations"][0]["doc"].get<std::string>().find("narwhal.txt"), std::string::npos);
  // The server is still healthy after all of it.
  const auto health = c.Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
}

}  // namespace
}  // namespace longqa
