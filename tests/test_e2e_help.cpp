// End-to-end: the program's help and usage message list every subcommand of the table the program
// registers from (cli/subcommands.h). Its own file: the table's namespace (lorazip) would make the
// e2e helpers' unqualified lorazip(...) calls ambiguous in the other files.
#include <gtest/gtest.h>

#include <iterator>
#include <regex>

#include "cli/subcommands.h"
#include "e2e/e2e_util.h"

// Every subcommand of the table (cli/subcommands.h, which the program checks against what it
// registers) is listed by --help, and named when no subcommand is given.
TEST(E2eCli, HelpListsEverySubcommand) {
  e2e::TempDir t;
  e2e::Result r = e2e::lorazip({"--help"}, t.path());
  EXPECT_EQ(r.rc, 0) << r.describe();
  e2e::Result none = e2e::lorazip({}, t.path());
  EXPECT_EQ(none.rc, 2) << none.describe();
  EXPECT_EQ(std::size(lorazip::kSubcommands), 16u);
  for (const lorazip::SubcommandInfo& s : lorazip::kSubcommands) {
    EXPECT_TRUE(std::regex_search(r.out, std::regex(std::string("\\n\\s+") + s.name + "\\s"))) << "--help does not list '" << s.name << "':\n" << r.out;
    EXPECT_NE(none.err.find(s.name), std::string::npos) << none.describe();
  }
}

