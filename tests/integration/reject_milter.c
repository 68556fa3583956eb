/* A libmilter milter for the integration tests that rejects at end of message: the "milter
 * after cllavio" that refuses a message cllavio already accepted (Postfix then logs
 * "milter-reject: END-OF-MESSAGE ..." and the message is never queued).
 *
 *   reject_milter -s SOCKET [-c CODE] [-x X.Y.Z] [-t TEXT] [-H 'Name: value']
 *
 *   -s  libmilter address: unix:/path (made mode 0666) or inet:PORT@HOST
 *   -c  SMTP reply code, 4xx (tempfail) or 5xx (reject); default 550
 *   -x  enhanced status code; default 5.7.1 (4.7.1 for a 4xx code)
 *   -t  reply text; default "Rejected by reject_milter"
 *   -H  reject only messages that have this header (name case-insensitive, value compared
 *       case-insensitively after trimming blanks); others pass. Without -H every message is
 *       rejected.
 * Prints "ready: listening on SOCKET" to stderr once listening.
 */
#include <ctype.h>
#include <libmilter/mfapi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static char reply_code[4] = "550";
static const char *reply_xcode = NULL;
static const char *reply_text = "Rejected by reject_milter";
static char *match_name = NULL;   /* NULL: reject everything */
static char *match_value = NULL;

/* Per-connection state: does the current message carry the header? */
struct state { int matched; };

static char *trim(char *s) {
  while (*s == ' ' || *s == '\t') s++;
  size_t n = strlen(s);
  while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n')) s[--n] = '\0';
  return s;
}

static struct state *st(SMFICTX *ctx) {
  struct state *s = smfi_getpriv(ctx);
  if (s == NULL) {
    s = calloc(1, sizeof *s);
    if (s != NULL) smfi_setpriv(ctx, s);
  }
  return s;
}

static sfsistat negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1, unsigned long f2, unsigned long f3,
                          unsigned long *pf0, unsigned long *pf1, unsigned long *pf2, unsigned long *pf3) {
  (void)ctx; (void)f0; (void)f2; (void)f3;
  unsigned long skip = SMFIP_NOCONNECT | SMFIP_NOHELO | SMFIP_NORCPT | SMFIP_NOBODY | SMFIP_NOEOH |
                       SMFIP_NOUNKNOWN | SMFIP_NODATA;
  if (match_name == NULL) skip |= SMFIP_NOHDRS;
  *pf0 = 0;
  *pf1 = f1 & skip;
  *pf2 = *pf3 = 0;
  return SMFIS_CONTINUE;
}

static sfsistat envfrom(SMFICTX *ctx, char **argv) {
  (void)argv;
  struct state *s = st(ctx);
  if (s != NULL) s->matched = 0;
  return SMFIS_CONTINUE;
}

static sfsistat header(SMFICTX *ctx, char *name, char *value) {
  struct state *s = st(ctx);
  if (s == NULL || match_name == NULL || strcasecmp(name, match_name) != 0) return SMFIS_CONTINUE;
  char *copy = strdup(value);
  if (copy != NULL) {
    if (strcasecmp(trim(copy), match_value) == 0) s->matched = 1;
    free(copy);
  }
  return SMFIS_CONTINUE;
}

static sfsistat eom(SMFICTX *ctx) {
  struct state *s = st(ctx);
  int reject = match_name == NULL || (s != NULL && s->matched);
  if (s != NULL) s->matched = 0;
  if (!reject) return SMFIS_CONTINUE;
  const char *x = reply_xcode ? reply_xcode : (reply_code[0] == '4' ? "4.7.1" : "5.7.1");
  smfi_setreply(ctx, reply_code, (char *)x, (char *)reply_text);
  return reply_code[0] == '4' ? SMFIS_TEMPFAIL : SMFIS_REJECT;
}

static sfsistat close_cb(SMFICTX *ctx) {
  free(smfi_getpriv(ctx));
  smfi_setpriv(ctx, NULL);
  return SMFIS_CONTINUE;
}

static int usage(void) {
  fprintf(stderr, "usage: reject_milter -s SOCKET [-c CODE] [-x X.Y.Z] [-t TEXT] [-H 'Name: value']\n");
  return 64;
}

int main(int argc, char **argv) {
  const char *sock = NULL;
  int opt;
  while ((opt = getopt(argc, argv, "s:c:x:t:H:")) != -1) {
    switch (opt) {
      case 's': sock = optarg; break;
      case 'c':
        if (strlen(optarg) != 3 || (optarg[0] != '4' && optarg[0] != '5') || !isdigit((unsigned char)optarg[1]) ||
            !isdigit((unsigned char)optarg[2]))
          return usage();
        memcpy(reply_code, optarg, 4);
        break;
      case 'x': reply_xcode = optarg; break;
      case 't': reply_text = optarg; break;
      case 'H': {
        char *colon = strchr(optarg, ':');
        if (colon == NULL) return usage();
        *colon = '\0';
        match_name = trim(optarg);
        match_value = trim(colon + 1);
        break;
      }
      default: return usage();
    }
  }
  if (sock == NULL || optind != argc) return usage();
  if (reply_xcode != NULL && reply_xcode[0] != reply_code[0]) {
    fprintf(stderr, "reject_milter: -x %s does not match -c %s\n", reply_xcode, reply_code);
    return 64;
  }
  struct smfiDesc d = {0};
  d.xxfi_name = "reject";
  d.xxfi_version = SMFI_VERSION;
  d.xxfi_envfrom = envfrom;
  d.xxfi_header = header;
  d.xxfi_eom = eom;
  d.xxfi_close = close_cb;
  d.xxfi_negotiate = negotiate;
  if (smfi_setconn((char *)sock) != MI_SUCCESS || smfi_register(d) != MI_SUCCESS ||
      smfi_opensocket(1) != MI_SUCCESS) {
    fprintf(stderr, "reject_milter: cannot listen on %s\n", sock);
    return 69;
  }
  if (strncmp(sock, "unix:", 5) == 0) chmod(sock + 5, 0666);
  else if (strncmp(sock, "local:", 6) == 0) chmod(sock + 6, 0666);
  fprintf(stderr, "ready: listening on %s\n", sock);
  return smfi_main() == MI_SUCCESS ? 0 : 1;
}
