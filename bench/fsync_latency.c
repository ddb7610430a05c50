// Latency of append + fsync (mode 0) or fdatasync (mode 1) on this disk.
// cc -O2 -o /tmp/fsync_latency bench/fsync_latency.c && /tmp/fsync_latency FILE COUNT MODE BYTES
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <unistd.h>
#include <time.h>
#include <string.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec*1e6+t.tv_nsec/1e3;}
static int cmp(const void*a,const void*b){double x=*(double*)a,y=*(double*)b;return x<y?-1:x>y;}
int main(int argc,char**argv){
  const char*path=argv[1]; int n=atoi(argv[2]); int mode=atoi(argv[3]); int size=atoi(argv[4]);
  int fd=open(path,O_WRONLY|O_CREAT|O_APPEND|O_TRUNC,0600);
  char*buf=malloc(size); memset(buf,'x',size); buf[size-1]='\n';
  double*lat=malloc(sizeof(double)*n);
  for(int i=0;i<n;i++){ double t0=now(); write(fd,buf,size); if(mode==0) fsync(fd); else fdatasync(fd); lat[i]=now()-t0; }
  qsort(lat,n,sizeof(double),cmp);
  printf("%s size=%d n=%d p50=%.0fus p90=%.0fus p99=%.0fus max=%.0fus\n", mode?"fdatasync":"fsync", size,n,lat[n/2],lat[n*9/10],lat[n*99/100],lat[n-1]);
  return 0;}
