/*
 * qosclient.h as a C program sees it: the header compiles as C, and the
 * library marks a socket from C.  (qosclient_test.cc covers the rest.)
 */
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "qosclient.h"

int main(void) {
  char error[256];
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  int tos = 0x01; /* ECT(1), owned by the transport */
  socklen_t length = sizeof tos;
  if (fd < 0 || setsockopt(fd, IPPROTO_IP, IP_TOS, &tos, sizeof tos) != 0) {
    perror("socket");
    return 1;
  }
  if (qos_mark_socket(fd, 46, error, sizeof error) != QOS_OK) {
    fprintf(stderr, "qos_mark_socket: %s\n", error);
    return 1;
  }
  if (getsockopt(fd, IPPROTO_IP, IP_TOS, &tos, &length) != 0 || tos != ((46 << 2) | 0x01)) {
    fprintf(stderr, "IP_TOS is 0x%02x, expected 0x%02x\n", tos, (46 << 2) | 0x01);
    return 1;
  }
  if (qos_mark_socket(fd, 64, error, sizeof error) != QOS_INVALID || strlen(error) == 0) {
    fprintf(stderr, "DSCP 64 was not refused with a message\n");
    return 1;
  }
  if (strcmp(qos_status_name(QOS_UNAUTHORIZED), "unauthorized") != 0) {
    return 1;
  }
  close(fd);
  printf("qosclient from C: ok\n");
  return 0;
}
