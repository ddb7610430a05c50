// A model of the audit group commit without the proxy: C closed-loop clients, one writer
// thread, K sync threads. cc -O2 -pthread -o /tmp/gc bench/group_commit_model.c && /tmp/gc FILE C K THINK_US SECONDS
// Closed-loop clients (C) each submit a 300-byte record and wait until it is durable, then
// think P us and submit again. A writer thread appends everything queued with one write();
// K sync threads: each takes "written but not yet being synced" up to the current offset,
// fdatasyncs, and releases those records. K=1 is classic group commit.
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <unistd.h>
#include <time.h>
#include <string.h>
#include <pthread.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec*1e6+t.tv_nsec/1e3;}
static pthread_mutex_t m=PTHREAD_MUTEX_INITIALIZER; static pthread_cond_t qc=PTHREAD_COND_INITIALIZER, sc=PTHREAD_COND_INITIALIZER, dc=PTHREAD_COND_INITIALIZER;
static long queued=0, written=0, syncing=0, durable=0, submitted=0; static int fd; static double endt; static int P; static long ops=0, syncs=0; static double latsum=0;
static void* client(void*a){ while(now()<endt){ pthread_mutex_lock(&m); long my=++submitted; queued++; double t=now(); pthread_cond_signal(&qc);
  while(durable<my) pthread_cond_wait(&dc,&m); ops++; latsum+=now()-t; pthread_mutex_unlock(&m); if(P){ double e=now()+P; while(now()<e); } } return 0; }
static void* writer(void*a){ char buf[300*4096]; memset(buf,'x',sizeof buf); for(;;){ pthread_mutex_lock(&m); while(queued==0) pthread_cond_wait(&qc,&m); long n=queued; queued=0; pthread_mutex_unlock(&m);
  write(fd,buf,300*(n>4096?4096:n)); pthread_mutex_lock(&m); written+=n; pthread_cond_signal(&sc); pthread_mutex_unlock(&m);} }
static void* syncer(void*a){ for(;;){ pthread_mutex_lock(&m); while(written==syncing) pthread_cond_wait(&sc,&m); long upto=written; syncing=upto; pthread_mutex_unlock(&m);
  fdatasync(fd); pthread_mutex_lock(&m); syncs++; if(upto>durable) durable=upto; pthread_cond_broadcast(&dc); pthread_mutex_unlock(&m);} }
int main(int argc,char**argv){ int C=atoi(argv[2]),K=atoi(argv[3]); P=atoi(argv[4]); double D=atof(argv[5]);
  fd=open(argv[1],O_WRONLY|O_CREAT|O_APPEND|O_TRUNC,0600); endt=now()+D*1e6; pthread_t t;
  pthread_create(&t,0,writer,0); for(int i=0;i<K;i++) pthread_create(&t,0,syncer,0);
  pthread_t cl[256]; for(int i=0;i<C;i++) pthread_create(&cl[i],0,client,0); for(int i=0;i<C;i++) pthread_join(cl[i],0);
  printf("C=%d K=%d think=%dus: %.0f records/s, %.0f fsyncs/s, %.1f records/fsync, latency %.0fus\n",C,K,P,ops/D,syncs/D,(double)ops/syncs,latsum/ops); return 0; }
