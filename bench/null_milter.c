/* A do-nothing libmilter milter: the floor any milter costs (benchmark baseline).
 * Registers no callbacks but end-of-message, negotiates every step away that it can.
 *   null_milter unix:/path | inet:PORT@HOST
 */
#include <libmilter/mfapi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

static sfsistat negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1, unsigned long f2, unsigned long f3,
                          unsigned long *pf0, unsigned long *pf1, unsigned long *pf2, unsigned long *pf3) {
  (void)ctx; (void)f0; (void)f2; (void)f3;
  *pf0 = 0;
  *pf1 = f1 & (SMFIP_NOCONNECT | SMFIP_NOHELO | SMFIP_NOMAIL | SMFIP_NORCPT | SMFIP_NOBODY | SMFIP_NOHDRS |
               SMFIP_NOEOH | SMFIP_NOUNKNOWN | SMFIP_NODATA);
  *pf2 = *pf3 = 0;
  return SMFIS_CONTINUE;
}

static sfsistat eom(SMFICTX *ctx) { (void)ctx; return SMFIS_CONTINUE; }

int main(int argc, char **argv) {
  if (argc != 2) { fprintf(stderr, "usage: null_milter SOCKET\n"); return 64; }
  struct smfiDesc d = {0};
  d.xxfi_name = "null";
  d.xxfi_version = SMFI_VERSION;
  d.xxfi_eom = eom;
  d.xxfi_negotiate = negotiate;
  if (smfi_setconn(argv[1]) != MI_SUCCESS || smfi_register(d) != MI_SUCCESS || smfi_opensocket(1) != MI_SUCCESS) {
    fprintf(stderr, "null_milter: cannot listen on %s\n", argv[1]);
    return 69;
  }
  if (argv[1][0] == 'u') chmod(argv[1] + 5, 0666);
  fprintf(stderr, "ready: listening on %s\n", argv[1]);
  return smfi_main() == MI_SUCCESS ? 0 : 1;
}
