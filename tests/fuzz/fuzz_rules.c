/* Fuzz the rule file parser: yajl with comments, the tree builder, every key's
 * checks and PCRE2 compilation. Any input must give a rule set (maybe empty)
 * with errors counted, never a crash, a leak or undefined behaviour. The
 * Hyperscan build is left out: it is slow and not a parser of this input. */
#include <stddef.h>
#include <stdint.h>

#include "cor_rule.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    cor_load_opts lo = {NULL, true};
    cor_ruleset *rs = cor_ruleset_load_text("fuzz.rules", (const char *)data, size, &lo);
    if (rs) {
        for (size_t i = 0; i < rs->n_rules; i++)
            if (!rs->rules[i]->id || !rs->rules[i]->n_steps)
                __builtin_trap();
    }
    cor_ruleset_free(rs);
    return 0;
}
